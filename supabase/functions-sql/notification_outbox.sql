-- The outbox: notification_deliveries rows queued by triggers in the transaction of the change
-- that causes them (never for app.source = 'backfill'), one per event x rule x recipient x
-- channel under a unique dedupe key. Consent, opt-outs, quiet hours and the booking phone's daily
-- cap are decided here, at queue time, so the row shows what will happen; the sender checks
-- them again at send time (messaging_send.sql).

-- When a message composed at p_at may go out in zone p_timezone: at p_at, or at the next 08:00
-- local when p_at falls in the quiet hours 21:00-08:00 (correct across daylight saving: the
-- local 08:00 is turned back into an instant in that zone).
create or replace function private.after_quiet_hours(p_at timestamptz, p_timezone text)
returns timestamptz
language sql stable
set search_path = ''
as $fn$
    select case
        when (p_at at time zone coalesce(p_timezone, 'UTC'))::time >= time '21:00'
            then (((p_at at time zone coalesce(p_timezone, 'UTC'))::date + 1) + time '08:00')
            at time zone coalesce(p_timezone, 'UTC')
        when (p_at at time zone coalesce(p_timezone, 'UTC'))::time < time '08:00'
            then ((p_at at time zone coalesce(p_timezone, 'UTC'))::date + time '08:00')
            at time zone coalesce(p_timezone, 'UTC')
        else p_at
    end
$fn$;

-- How long before the appointment a reminder event goes out (null for other events).
create or replace function private.reminder_lead(p_event text)
returns interval
language sql immutable
set search_path = ''
as $fn$
    select case p_event
        when 'reservation_reminder_24h' then interval '24 hours'
        when 'reservation_reminder_2h' then interval '2 hours'
    end
$fn$;

-- Whether a reminder sent at p_at is still worth sending: at least half its lead before the
-- appointment (a 2 h reminder deferred by quiet hours to 08:00 for an 08:30 appointment is not).
create or replace function private.reminder_still_useful(
    p_event text, p_at timestamptz, p_appointment_time timestamptz
)
returns boolean
language sql immutable
set search_path = ''
as $fn$
    select private.reminder_lead(p_event) is null
        or p_at <= p_appointment_time - private.reminder_lead(p_event) / 2
$fn$;

-- Why an SMS or WhatsApp message to p_phone may not be sent (null: it may). p_consent is the
-- account's sms_opt_in (true for a booking phone, which receives only its booking's messages).
create or replace function private.phone_suppression(
    p_channel text, p_phone text, p_consent boolean, p_booking_phone boolean
)
returns text
language sql stable
set search_path = ''
as $fn$
    select case
        when p_channel not in ('sms', 'whatsapp') then null
        when p_phone is null or p_phone !~ '^\+[1-9][0-9]{6,14}$' then 'no_phone'
        when not coalesce(p_consent, false) then 'no_consent'
        when exists (
            select from private.message_opt_outs as o
            where o.address = p_phone and o.channel = p_channel
        ) then 'opted_out'
        when p_booking_phone and (
            select pg_catalog.count(*) from public.notification_deliveries as d
            where
                d.address in (p_phone, 'whatsapp:' || p_phone)
                and d.created_at > pg_catalog.now() - interval '24 hours'
                and d.status not in ('suppressed', 'cancelled')
        ) >= private.limit_value('booking_phone_messages_per_day') then 'daily_limit'
    end
$fn$;

-- Queue the deliveries of event p_event (see notification_rules.event) about ticket
-- p_ticket_id, reservation p_reservation_id or reservation request p_request_id; p_at is the
-- moment the event happens (a reminder's: its time before the appointment p_appointment_time).
-- Returns how many rows it added. Idempotent: the dedupe key ignores a second call.
create or replace function private.queue_notifications(
    p_event text,
    p_ticket_id uuid,
    p_reservation_id uuid,
    p_request_id uuid,
    p_appointment_time timestamptz,
    p_at timestamptz
)
returns integer
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_rule public.notification_rules;
    v_ticket public.healthcare_tickets;
    v_reservation public.reservation;
    v_request public.reservation_request;
    v_event_key text;
    v_practitioner uuid;
    v_patient_id uuid;
    v_booking_phone text;
    v_booking_preferred text;
    v_recipient_id uuid;
    v_phone text;
    v_preferred text;
    v_consent boolean;
    v_timezone text;
    v_is_booking boolean;
    v_candidates text[];
    v_channel text;
    v_reason text;
    v_chosen text;
    v_chosen_reason text;
    v_not_before timestamptz;
    v_status text;
    v_added integer := 0;
    v_count integer;
begin
    if private.request_source() = 'backfill' then
        return 0;
    end if;
    if p_ticket_id is not null then
        select t.* into v_ticket from public.healthcare_tickets as t where t.id = p_ticket_id;
        v_event_key := pg_catalog.format('ticket:%s:%s', p_ticket_id, v_ticket.status);
        v_patient_id := v_ticket.patient_id;
    elsif p_reservation_id is not null then
        select r.* into v_reservation from public.reservation as r where r.id = p_reservation_id;
        v_event_key := pg_catalog.format(
            'reservation:%s:%s:%s', p_reservation_id, p_event,
            pg_catalog.date_part('epoch', p_appointment_time)::bigint
        );
        v_practitioner := v_reservation.profile_id;
        v_patient_id := v_reservation.patient_id;
        v_booking_phone := private.e164(pg_catalog.regexp_replace(
            v_reservation.patient_phone, '[^0-9+]', '', 'g'
        ));
        select rq.preferred_contact_method::text into v_booking_preferred
        from public.reservation_request as rq where rq.id = v_reservation.request_id;
    else
        select rq.* into v_request from public.reservation_request as rq where rq.id = p_request_id;
        v_event_key := pg_catalog.format('request:%s:%s', p_request_id, p_event);
        v_practitioner := v_request.profile_id;
        v_patient_id := v_request.patient_id;
        v_booking_phone := private.e164(pg_catalog.regexp_replace(
            v_request.patient_phone, '[^0-9+]', '', 'g'
        ));
        v_booking_preferred := v_request.preferred_contact_method::text;
    end if;

    for v_rule in
        select r.* from public.notification_rules as r
        where
            r.is_active and r.event = p_event
            and (p_event <> 'ticket_status'
                or (r.ticket_type = v_ticket.ticket_type and r.status = v_ticket.status))
        order by r.name
    loop
        -- The recipient, by audience. The actor is never told of their own action.
        v_recipient_id := null;
        v_phone := null;
        v_is_booking := false;
        if v_rule.audience = 'patient' then
            if v_patient_id is not null then
                select p.id, p.phone, p.preferred_contact_method, p.sms_opt_in, p.timezone
                into v_recipient_id, v_phone, v_preferred, v_consent, v_timezone
                from public.profile as p where p.id = v_patient_id;
                if v_recipient_id is not distinct from (select auth.uid()) then
                    continue;
                end if;
                v_consent := v_consent and v_preferred <> 'none';
            elsif p_ticket_id is null then
                v_is_booking := true;
                v_phone := v_booking_phone;
                v_consent := true;
                v_preferred := case when v_booking_preferred = 'whatsapp' then 'whatsapp' else 'sms' end;
                v_timezone := null;
            else
                continue;
            end if;
            v_timezone := coalesce(
                v_timezone,
                (select pr.timezone from public.profile as pr where pr.id = v_practitioner),
                (select pv.timezone from public.providers as pv
                 where pv.id = coalesce(v_ticket.secondary_provider_id, v_ticket.primary_provider_id)),
                'UTC'
            );
        elsif v_rule.audience = 'primary' and v_ticket.primary_provider_id is not null then
            if private.is_provider_member(v_ticket.primary_provider_id) then
                continue;
            end if;
            select pv.phone, pv.timezone into v_phone, v_timezone
            from public.providers as pv where pv.id = v_ticket.primary_provider_id;
            v_preferred := 'sms';
            v_consent := true;
        elsif v_rule.audience = 'secondary' and v_ticket.secondary_provider_id is not null
            and private.fulfiller_is_party(v_ticket.sent_at) then
            if private.is_provider_member(v_ticket.secondary_provider_id) then
                continue;
            end if;
            select pv.phone, pv.timezone into v_phone, v_timezone
            from public.providers as pv where pv.id = v_ticket.secondary_provider_id;
            v_preferred := 'sms';
            v_consent := true;
        else
            continue;
        end if;

        -- A system message in the ticket's thread, when the rule has one.
        if 'chat' = any(v_rule.channels) and p_ticket_id is not null then
            insert into public.notification_deliveries (
                rule_id, event, recipient_id, channel, ticket_id, dedupe_key, status, not_before,
                recipient_timezone
            ) values (
                v_rule.id, p_event, v_recipient_id, 'chat', p_ticket_id,
                v_event_key || ':' || v_rule.id || ':thread:chat', 'queued',
                pg_catalog.now() + pg_catalog.make_interval(mins => v_rule.delay_minutes),
                v_timezone
            )
            on conflict (dedupe_key) do nothing;
            get diagnostics v_count = row_count;
            v_added := v_added + v_count;
        end if;

        -- One phone or email message: the preferred channel among the rule's, else the first
        -- that is allowed; when none is, the preferred one's refusal is recorded (or the next
        -- one's, when the preferred channel is merely disabled for this rule).
        v_candidates := array(
            select c from pg_catalog.unnest(v_rule.channels) with ordinality as u (c, n)
            where c in ('sms', 'whatsapp', 'email')
            order by (c = v_preferred) desc, n
        );
        continue when pg_catalog.cardinality(v_candidates) = 0;
        v_chosen := null;
        v_chosen_reason := null;
        foreach v_channel in array v_candidates loop
            v_reason := case
                when v_channel = 'whatsapp' and v_rule.whatsapp_content_sid is null
                    then 'channel_disabled'
                else private.phone_suppression(v_channel, v_phone, v_consent, v_is_booking)
            end;
            if v_reason is null then
                v_chosen := v_channel;
                v_chosen_reason := null;
                exit;
            elsif v_chosen is null or v_chosen_reason = 'channel_disabled' then
                -- A channel the rule cannot use says less than why the number may not be used.
                v_chosen := v_channel;
                v_chosen_reason := v_reason;
            end if;
        end loop;

        v_not_before := coalesce(p_at, pg_catalog.now())
            + pg_catalog.make_interval(mins => v_rule.delay_minutes);
        if v_rule.quiet_hours and v_chosen in ('sms', 'whatsapp') then
            v_not_before := private.after_quiet_hours(v_not_before, v_timezone);
        end if;
        if v_chosen_reason is null and p_appointment_time is not null
            and not private.reminder_still_useful(p_event, v_not_before, p_appointment_time) then
            v_chosen_reason := 'too_late_after_quiet_hours';
            v_status := 'cancelled';
        elsif v_chosen_reason is not null then
            v_status := 'suppressed';
        elsif v_not_before > pg_catalog.now() then
            v_status := 'scheduled';
        else
            v_status := 'queued';
        end if;

        insert into public.notification_deliveries (
            rule_id, event, recipient_id, channel, address, ticket_id, reservation_id,
            request_id, appointment_time, recipient_timezone, dedupe_key, status,
            suppressed_reason, not_before, error_message
        ) values (
            v_rule.id, p_event, v_recipient_id, v_chosen,
            case
                when v_chosen = 'whatsapp' and v_phone is not null then 'whatsapp:' || v_phone
                when v_chosen = 'sms' then v_phone
            end,
            p_ticket_id, p_reservation_id, p_request_id, p_appointment_time, v_timezone,
            v_event_key || ':' || v_rule.id || ':'
            || coalesce(v_recipient_id::text, v_phone, v_rule.audience) || ':' || v_chosen,
            v_status, v_chosen_reason, v_not_before,
            case when v_chosen = 'email' then 'email is not delivered yet: kept queued' end
        )
        on conflict (dedupe_key) do nothing;
        get diagnostics v_count = row_count;
        v_added := v_added + v_count;
    end loop;
    return v_added;
end
$fn$;

-- AFTER UPDATE OF status on healthcare_tickets: the rules of the status reached.
create or replace function private.queue_ticket_status_notifications()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.queue_notifications('ticket_status', new.id, null, null, null, null);
    return null;
end
$fn$;

revoke execute on function private.after_quiet_hours(timestamptz, text) from public;
revoke execute on function private.reminder_lead(text) from public;
revoke execute on function private.reminder_still_useful(text, timestamptz, timestamptz)
from public;
revoke execute on function private.phone_suppression(text, text, boolean, boolean) from public;
revoke execute on function private.queue_notifications(
    text, uuid, uuid, uuid, timestamptz, timestamptz
) from public;
revoke execute on function private.queue_ticket_status_notifications() from public;
grant execute on function private.after_quiet_hours(timestamptz, text) to service_role;
grant execute on function private.reminder_lead(text) to service_role;
grant execute on function private.reminder_still_useful(text, timestamptz, timestamptz)
to service_role;

drop trigger if exists queue_ticket_status_notifications on public.healthcare_tickets;
create trigger queue_ticket_status_notifications
after update of status on public.healthcare_tickets
for each row when (old.status is distinct from new.status)
execute function private.queue_ticket_status_notifications();
