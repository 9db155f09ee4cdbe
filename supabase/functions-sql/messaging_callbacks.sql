-- Outbox delivery statuses from Twilio (callbacks, lookups, reconciliation): applied only
-- forward; the sid the callbacks tell; opting a number out.

-- Opt number p_address (E.164, or whatsapp:+...) out of p_channel (p_source: 'inbound STOP',
-- 'error 21610', ...).
create or replace function private.opt_out_address(
    p_address text, p_channel text, p_source text
)
returns void
language sql
security definer
set search_path = ''
as $fn$
    insert into private.message_opt_outs (address, channel, source)
    select pg_catalog.replace(p_address, 'whatsapp:', ''), p_channel, p_source
    where pg_catalog.replace(p_address, 'whatsapp:', '') ~ '^\+[1-9][0-9]{6,14}$'
    on conflict (address, channel) do nothing
$fn$;

-- Rank of a delivery status on the way forward; undelivered and failed are final.
create or replace function private.delivery_status_rank(p_status text)
returns integer
language sql immutable
set search_path = ''
as $fn$
    select case p_status
        when 'queued' then 0 when 'scheduled' then 0 when 'sending' then 1 when 'sent' then 2
        when 'undelivered' then 3 when 'failed' then 3 when 'delivered' then 4 when 'read' then 5
        else -1
    end
$fn$;

-- Apply Twilio status p_status (a callback's, a lookup's or a reconciliation's) of message
-- p_sid to delivery p_delivery_id, only forward: delivered never goes back to sent, read comes
-- after delivered, undelivered and failed are final. Records the sid when the delivery had none
-- (its sender crashed before recording it). Returns 'applied', 'kept <status>' or 'no delivery'.
create or replace function private.apply_delivery_status(
    p_delivery_id uuid, p_sid text, p_status text, p_error_code integer, p_error_message text
)
returns text
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_delivery public.notification_deliveries;
    v_status text := case
        when p_status in ('queued', 'accepted', 'sending', 'scheduled', 'sent') then 'sent'
        when p_status in ('delivered', 'read', 'undelivered', 'failed') then p_status
        when p_status = 'canceled' then 'failed'
    end;
begin
    select d.* into v_delivery from public.notification_deliveries as d
    where
        (d.id = p_delivery_id and (d.provider_message_id is null or d.provider_message_id = p_sid))
        or (p_delivery_id is null and d.provider_message_id = p_sid)
    for update;
    if v_delivery.id is null then
        return 'no delivery';
    end if;
    if v_status is null or v_delivery.status in ('undelivered', 'failed', 'suppressed', 'cancelled')
        or private.delivery_status_rank(v_status) <= private.delivery_status_rank(v_delivery.status)
    then
        if v_delivery.provider_message_id is null then
            update public.notification_deliveries as d set provider_message_id = p_sid
            where d.id = v_delivery.id;
        end if;
        return 'kept ' || v_delivery.status;
    end if;
    update public.notification_deliveries as d
    set
        status = v_status,
        provider_message_id = coalesce(d.provider_message_id, p_sid),
        provider_status = p_status,
        next_attempt_at = null,
        sent_at = coalesce(d.sent_at, pg_catalog.now()),
        delivered_at = case
            when v_status in ('delivered', 'read') then coalesce(d.delivered_at, pg_catalog.now())
            else d.delivered_at
        end,
        read_at = case when v_status = 'read' then pg_catalog.now() else d.read_at end,
        error_code = coalesce(p_error_code, d.error_code),
        error_message = coalesce(p_error_message, d.error_message),
        updated_at = pg_catalog.now()
    where d.id = v_delivery.id;
    if p_error_code in (
        select a.code from private.twilio_error_actions as a where a.action = 'opt_out'
    ) then
        perform private.opt_out_address(
            v_delivery.address, v_delivery.channel, 'error ' || p_error_code
        );
    end if;
    perform private.sync_reservation_reminder_flags(v_delivery.reservation_id);
    return 'applied';
end
$fn$;

-- The sid Twilio gave delivery p_delivery_id, as its status callbacks tell (they carry the
-- delivery id in their URL); null when none arrived.
create or replace function private.twilio_sid_from_callbacks(p_delivery_id uuid)
returns text
language sql stable
security definer
set search_path = ''
as $fn$
    select e.message_sid from private.twilio_webhook_events as e
    where e.delivery_id = p_delivery_id and e.kind = 'status' and e.message_sid is not null
    order by e.seq
    limit 1
$fn$;

revoke execute on function private.opt_out_address(text, text, text) from public;
revoke execute on function private.delivery_status_rank(text) from public;
revoke execute on function private.apply_delivery_status(uuid, text, text, integer, text)
from public;

revoke execute on function private.twilio_sid_from_callbacks(uuid) from public;

grant execute on function private.delivery_status_rank(text) to service_role;
