-- chat_unread: a text (SMS/WhatsApp) to a ticket thread's patient who has not read a new message
-- for the rule's delay_minutes. Queued by a trigger on chat_messages in the message's
-- transaction (never for system messages, never for app.source = 'backfill', never to the
-- sender); one delivery per recipient and thread while one is still waiting, keyed by the first
-- message the recipient has not read. At send time a recipient who has read the thread since
-- cancels it (private.send_time_refusal, reason 'thread_read').

-- AFTER INSERT on chat_messages (not system messages): queue the chat_unread rules' deliveries
-- for the thread's patient, when it is a ticket's thread and they did not send the message.
create or replace function private.queue_chat_unread_notifications()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket public.healthcare_tickets;
    v_rule public.notification_rules;
    v_last_read timestamptz;
    v_phone text;
    v_preferred text;
    v_consent boolean;
    v_timezone text;
    v_first_unread uuid;
    v_channel text;
    v_reason text;
    v_chosen text;
    v_chosen_reason text;
    v_not_before timestamptz;
begin
    if private.request_source() = 'backfill' then
        return null;
    end if;
    select t.* into v_ticket
    from public.chat_threads as th
    inner join public.healthcare_tickets as t on th.ticket_id = t.id
    where th.id = new.thread_id;
    if v_ticket.id is null or v_ticket.patient_id is null
        or v_ticket.patient_id is not distinct from new.sender_id then
        return null;
    end if;
    -- The patient must be a member of the thread.
    select m.last_read_at into v_last_read
    from public.chat_thread_members as m
    where m.thread_id = new.thread_id and m.profile_id = v_ticket.patient_id;
    if not found then
        return null;
    end if;
    -- One waiting delivery per recipient and thread is enough.
    if exists (
        select from public.notification_deliveries as d
        inner join public.chat_messages as cm on d.chat_message_id = cm.id
        where
            d.event = 'chat_unread' and d.recipient_id = v_ticket.patient_id
            and cm.thread_id = new.thread_id
            and d.status in ('queued', 'scheduled', 'sending')
    ) then
        return null;
    end if;
    -- The first message the patient has not read (this one, unless earlier ones are unread).
    select cm.id into v_first_unread
    from public.chat_messages as cm
    where
        cm.thread_id = new.thread_id and cm.kind <> 'system'
        and cm.sender_id is distinct from v_ticket.patient_id
        and cm.created_at > coalesce(v_last_read, '-infinity')
    order by cm.created_at, (cm.id <> new.id)
    limit 1;
    v_first_unread := coalesce(v_first_unread, new.id);

    select p.phone, p.preferred_contact_method, p.sms_opt_in and p.preferred_contact_method <> 'none',
        coalesce(
            p.timezone,
            (select pv.timezone from public.providers as pv
             where pv.id = coalesce(v_ticket.secondary_provider_id, v_ticket.primary_provider_id)),
            'UTC'
        )
    into v_phone, v_preferred, v_consent, v_timezone
    from public.profile as p where p.id = v_ticket.patient_id;

    for v_rule in
        select r.* from public.notification_rules as r
        where r.is_active and r.event = 'chat_unread' and r.audience = 'patient'
        order by r.name
    loop
        -- The preferred channel among the rule's, else the first allowed (as every rule).
        v_chosen := null;
        v_chosen_reason := null;
        foreach v_channel in array array(
            select c from pg_catalog.unnest(v_rule.channels) with ordinality as u (c, n)
            where c in ('sms', 'whatsapp', 'email')
            order by (c = v_preferred) desc, n
        ) loop
            v_reason := case
                when v_channel = 'whatsapp' and v_rule.whatsapp_content_sid is null
                    then 'channel_disabled'
                else private.phone_suppression(v_channel, v_phone, v_consent, false)
            end;
            if v_reason is null then
                v_chosen := v_channel;
                v_chosen_reason := null;
                exit;
            elsif v_chosen is null or v_chosen_reason = 'channel_disabled' then
                v_chosen := v_channel;
                v_chosen_reason := v_reason;
            end if;
        end loop;
        continue when v_chosen is null;

        v_not_before := pg_catalog.now() + pg_catalog.make_interval(mins => v_rule.delay_minutes);
        if v_rule.quiet_hours and v_chosen in ('sms', 'whatsapp') then
            v_not_before := private.after_quiet_hours(v_not_before, v_timezone);
        end if;
        insert into public.notification_deliveries (
            rule_id, event, recipient_id, channel, address, ticket_id, chat_message_id,
            recipient_timezone, dedupe_key, status, suppressed_reason, not_before, error_message
        ) values (
            v_rule.id, 'chat_unread', v_ticket.patient_id, v_chosen,
            case
                when v_chosen = 'whatsapp' and v_phone is not null then 'whatsapp:' || v_phone
                when v_chosen = 'sms' then v_phone
            end,
            v_ticket.id, v_first_unread, v_timezone,
            pg_catalog.format(
                'chat_unread:%s:%s:%s:%s', new.thread_id, v_ticket.patient_id, v_first_unread,
                v_rule.id
            ),
            case
                when v_chosen_reason is not null then 'suppressed'
                when v_not_before > pg_catalog.now() then 'scheduled'
                else 'queued'
            end,
            v_chosen_reason, v_not_before,
            case when v_chosen = 'email' then 'email is not delivered yet: kept queued' end
        )
        on conflict (dedupe_key) do nothing;
    end loop;
    return null;
end
$fn$;

revoke execute on function private.queue_chat_unread_notifications() from public;

drop trigger if exists queue_chat_unread_notifications on public.chat_messages;
create trigger queue_chat_unread_notifications
after insert on public.chat_messages
for each row when (new.kind <> 'system')
execute function private.queue_chat_unread_notifications();
