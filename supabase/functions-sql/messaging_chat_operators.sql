-- Chat deliveries of the outbox (system messages in the ticket's thread), and the operators'
-- retry and cancel of a delivery.

-- Post up to p_limit due chat deliveries as system messages (kind 'system', no sender) in
-- their ticket's thread; a thread that refuses (CH004) or is missing makes them suppressed.
create or replace function private.deliver_chat_notifications(
    p_limit integer, p_support_phone text, p_app_base_url text
)
returns integer
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_delivery public.notification_deliveries;
    v_thread_id uuid;
    v_body text;
    v_done integer := 0;
begin
    for v_delivery in
        select d.* from public.notification_deliveries as d
        where d.status in ('queued', 'scheduled') and d.channel = 'chat'
            and d.not_before <= pg_catalog.now()
        order by d.not_before
        limit p_limit
        for update skip locked
    loop
        v_done := v_done + 1;
        select th.id into v_thread_id from public.chat_threads as th
        where th.ticket_id = v_delivery.ticket_id
        order by th.created_at
        limit 1;
        if v_thread_id is null then
            update public.notification_deliveries as d
            set status = 'suppressed', suppressed_reason = 'no_thread', updated_at = pg_catalog.now()
            where d.id = v_delivery.id;
            continue;
        end if;
        v_body := private.render_template(
            (select r.chat_template from public.notification_rules as r
             where r.id = v_delivery.rule_id),
            private.notification_values(v_delivery.id, p_support_phone, p_app_base_url),
            true
        );
        begin
            insert into public.chat_messages (thread_id, sender_id, body, kind, metadata)
            values (
                v_thread_id, null, v_body, 'system',
                pg_catalog.jsonb_build_object('notification_delivery_id', v_delivery.id)
            );
            update public.notification_deliveries as d
            set
                status = 'sent', body = v_body, sent_at = pg_catalog.now(),
                attempts = d.attempts + 1, updated_at = pg_catalog.now()
            where d.id = v_delivery.id;
        exception when sqlstate 'CH004' then
            update public.notification_deliveries as d
            set
                status = 'suppressed', suppressed_reason = 'thread_refused',
                error_message = sqlerrm, updated_at = pg_catalog.now()
            where d.id = v_delivery.id;
        end;
    end loop;
    return v_done;
end
$fn$;

-- Operators: queue delivery p_delivery_id again now (from failed, undelivered, suppressed or
-- cancelled; an opted-out number stays suppressed at send time). Returns the row.
create or replace function private.retry_notification_delivery(p_delivery_id uuid)
returns setof public.notification_deliveries
language sql
security definer
set search_path = ''
as $fn$
    update public.notification_deliveries as d
    set
        status = 'queued', suppressed_reason = null, not_before = pg_catalog.now(),
        next_attempt_at = null, attempts = 0, error_code = null, error_message = null,
        updated_at = pg_catalog.now()
    where
        d.id = p_delivery_id
        and d.status in ('failed', 'undelivered', 'suppressed', 'cancelled')
        and d.channel in ('sms', 'whatsapp', 'chat')
    returning d.*
$fn$;

-- Operators: cancel delivery p_delivery_id if it has not been handed to Twilio yet.
create or replace function private.cancel_notification_delivery(p_delivery_id uuid)
returns setof public.notification_deliveries
language sql
security definer
set search_path = ''
as $fn$
    update public.notification_deliveries as d
    set status = 'cancelled', suppressed_reason = 'cancelled_by_operator', updated_at = pg_catalog.now()
    where d.id = p_delivery_id and d.status in ('queued', 'scheduled')
    returning d.*
$fn$;

revoke execute on function private.deliver_chat_notifications(integer, text, text) from public;
revoke execute on function private.retry_notification_delivery(uuid) from public;
revoke execute on function private.cancel_notification_delivery(uuid) from public;
