-- Sending the outbox (SMS/WhatsApp): the send budget every worker shares, claiming due rows
-- with the send-time checks and the body rendered now, and recording Twilio's answer.

-- Take up to p_wanted send tokens from the one bucket all workers share (TWILIO_MAX_SENDS_PER_
-- SECOND, a burst of one second); returns how many were granted. p_per_second null or 0: no
-- limit. The row lock makes concurrent takers queue for a moment, never overdraw.
create or replace function private.take_send_tokens(p_wanted integer, p_per_second double precision)
returns integer
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_tokens double precision;
    v_granted integer;
begin
    if coalesce(p_per_second, 0) <= 0 then
        return p_wanted;
    end if;
    select least(
        p_per_second,
        b.tokens
        + pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - b.updated_at) * p_per_second
    )
    into v_tokens
    from private.twilio_send_budget as b
    where b.id
    for update;
    v_granted := least(p_wanted, pg_catalog.floor(v_tokens)::integer);
    update private.twilio_send_budget as b
    set tokens = v_tokens - v_granted, updated_at = pg_catalog.clock_timestamp()
    where b.id;
    return v_granted;
end
$fn$;

-- Give back p_count tokens taken but not used.
create or replace function private.return_send_tokens(p_count integer)
returns void
language sql
security definer
set search_path = ''
as $fn$
    update private.twilio_send_budget as b set tokens = b.tokens + p_count
    where b.id and p_count > 0
$fn$;

-- The placeholder values of delivery p_delivery_id, read from the current rows (a SHIPPED
-- text carries the tracking number written later in the same processing).
create or replace function private.notification_values(
    p_delivery_id uuid, p_support_phone text, p_app_base_url text
)
returns jsonb
language sql stable
security definer
set search_path = ''
as $fn$
    select pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
        'patient_first_name', nullif(pg_catalog.split_part(
            coalesce(pp.full_name, res.patient_name, req.patient_name), ' ', 1), ''),
        'pharmacy_name', case when t.ticket_type = 'prescription' then sec.name end,
        'practitioner_name', coalesce(prac.full_name, pri.name),
        'service_name', ms.name,
        'appointment_time', pg_catalog.to_char(
            d.appointment_time at time zone coalesce(d.recipient_timezone, 'UTC'),
            'Dy DD Mon HH24:MI'
        ),
        'tracking_number', tr.tracking_number,
        'carrier', tr.carrier,
        'tracking_url', tr.tracking_url,
        'estimated_delivery', pg_catalog.to_char(
            tr.estimated_delivery at time zone coalesce(d.recipient_timezone, 'UTC'), 'Dy DD Mon'
        ),
        'support_phone', nullif(p_support_phone, ''),
        'app_link', nullif(p_app_base_url, '') || case
            when d.ticket_id is not null then '/tickets/' || d.ticket_id
            else '/appointments'
        end,
        'medication', coalesce(tr.medication_name, rx.medications -> 0 ->> 'name')
    ))
    from public.notification_deliveries as d
    left join public.healthcare_tickets as t on d.ticket_id = t.id
    left join public.reservation as res on d.reservation_id = res.id
    left join public.reservation_request as req on d.request_id = req.id
    left join public.profile as pp
        on pp.id = coalesce(t.patient_id, res.patient_id, req.patient_id)
    left join public.providers as sec on t.secondary_provider_id = sec.id
    left join public.providers as pri on t.primary_provider_id = pri.id
    left join public.profile as prac on prac.id = coalesce(res.profile_id, req.profile_id)
    left join public.medical_service as ms on ms.id = coalesce(res.service_id, req.service_id)
    left join public.prescriptions as rx on t.prescription_id = rx.id
    left join lateral (
        select x.* from public.prescription_tracking as x
        where x.ticket_id = t.id order by x.created_at desc limit 1
    ) as tr on true
    where d.id = p_delivery_id
$fn$;

-- Why delivery p_delivery, about to be sent now, must not be (null: send it), re-checked from
-- the current rows: an unread-chat message whose recipient has read the thread since, consent,
-- opt-out, the reservation still confirmed at the same time, the reminder's moment not past.
create or replace function private.send_time_refusal(p_delivery public.notification_deliveries)
returns text
language sql stable
security definer
set search_path = ''
as $fn$
    select case
        when p_delivery.event = 'chat_unread' and exists (
            select from public.chat_messages as cm
            inner join public.chat_thread_members as m on cm.thread_id = m.thread_id
            where
                cm.id = p_delivery.chat_message_id and m.profile_id = p_delivery.recipient_id
                and m.last_read_at >= cm.created_at
        ) then 'thread_read'
        when p_delivery.recipient_id is not null and not exists (
            select from public.profile as p
            where
                p.id = p_delivery.recipient_id and p.sms_opt_in
                and p.preferred_contact_method <> 'none'
        ) then 'no_consent'
        when exists (
            select from private.message_opt_outs as o
            where
                o.address = pg_catalog.replace(p_delivery.address, 'whatsapp:', '')
                and o.channel = p_delivery.channel
        ) then 'opted_out'
        when p_delivery.reservation_id is not null and p_delivery.event <> 'reservation_cancelled'
            and not exists (
                select from public.reservation as r
                where r.id = p_delivery.reservation_id and r.status = 'confirmed'
            ) then 'reservation_not_confirmed'
        when p_delivery.reservation_id is not null and not exists (
            select from public.reservation as r
            inner join public.time_slot as s on r.slot_id = s.id
            where r.id = p_delivery.reservation_id and s.start_time = p_delivery.appointment_time
        ) then 'rescheduled'
        when not private.reminder_still_useful(
            p_delivery.event, pg_catalog.now(), p_delivery.appointment_time
        ) then 'moment_passed'
    end
$fn$;

-- Claim up to p_limit due SMS/WhatsApp deliveries for one sender (skip locked: workers never
-- claim the same row), within the shared send budget p_per_second. Each claimed row becomes
-- 'sending' under a lease (notification_send_lease_seconds) with its body rendered now. A row
-- whose earlier lease expired (its sender crashed or timed out after the request may have left)
-- comes back with lookup = true: the sender looks it up at Twilio before sending it again.
-- Rows that fail the send-time checks become suppressed/cancelled; quiet hours defer them.
-- Only rows of p_channels (the channels this sender is configured for) are claimed: a WhatsApp
-- row waits, queued, until TWILIO_WHATSAPP_FROM is set.
create or replace function private.claim_notification_deliveries(
    p_limit integer,
    p_per_second double precision,
    p_support_phone text,
    p_app_base_url text,
    p_channels text[]
)
returns table (
    id uuid, channel text, address text, body text, content_sid text,
    content_variables jsonb, lookup boolean, created_at timestamptz, attempts integer
)
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_granted integer := private.take_send_tokens(p_limit, p_per_second);
    v_used integer := 0;
    v_delivery public.notification_deliveries;
    v_rule public.notification_rules;
    v_refusal text;
    v_values jsonb;
    v_body text;
    v_missing text;
    v_later timestamptz;
    v_lease interval := pg_catalog.make_interval(
        secs => private.limit_value('notification_send_lease_seconds')
    );
begin
    if v_granted <= 0 then
        return;
    end if;
    for v_delivery in
        select d.* from public.notification_deliveries as d
        where
            d.status in ('queued', 'scheduled', 'sending')
            and d.channel in ('sms', 'whatsapp')
            and d.channel = any(p_channels)
            and d.not_before <= pg_catalog.now()
            and coalesce(d.next_attempt_at, '-infinity') <= pg_catalog.now()
        order by d.not_before
        limit v_granted
        for update skip locked
    loop
        select r.* into v_rule from public.notification_rules as r where r.id = v_delivery.rule_id;
        v_refusal := private.send_time_refusal(v_delivery);
        if v_refusal is not null and v_delivery.status <> 'sending' then
            update public.notification_deliveries as d
            set
                status = case
                    when v_refusal in (
                        'rescheduled', 'moment_passed', 'reservation_not_confirmed', 'thread_read'
                    ) then 'cancelled'
                    else 'suppressed'
                end,
                suppressed_reason = v_refusal, updated_at = pg_catalog.now()
            where d.id = v_delivery.id;
            perform private.sync_reservation_reminder_flags(v_delivery.reservation_id);
            continue;
        end if;
        if v_delivery.status <> 'sending' and coalesce(v_rule.quiet_hours, true) then
            v_later := private.after_quiet_hours(pg_catalog.now(), v_delivery.recipient_timezone);
            if v_later > pg_catalog.now() then
                update public.notification_deliveries as d
                set
                    status = case
                        when private.reminder_still_useful(
                            d.event, v_later, d.appointment_time
                        ) then 'scheduled'
                        else 'cancelled'
                    end,
                    suppressed_reason = case
                        when not private.reminder_still_useful(
                            d.event, v_later, d.appointment_time
                        ) then 'too_late_after_quiet_hours'
                    end,
                    not_before = v_later, updated_at = pg_catalog.now()
                where d.id = v_delivery.id;
                continue;
            end if;
        end if;
        v_body := v_delivery.body;
        if v_delivery.status <> 'sending' then
            v_values := private.notification_values(v_delivery.id, p_support_phone, p_app_base_url);
            select m.name into v_missing
            from pg_catalog.unnest(v_rule.required_placeholders) as m (name)
            where not v_values ? m.name
            limit 1;
            if v_missing is not null then
                update public.notification_deliveries as d
                set
                    status = 'suppressed', suppressed_reason = 'missing_' || v_missing,
                    updated_at = pg_catalog.now()
                where d.id = v_delivery.id;
                continue;
            end if;
            v_body := private.render_template(v_rule.sms_template, v_values, v_rule.allow_phi);
            if v_delivery.content_sid is not null then
                v_delivery.content_variables := coalesce((
                    select pg_catalog.jsonb_object_agg(
                        w.key,
                        private.render_template(w.value, v_values, v_rule.allow_phi)
                    )
                    from pg_catalog.jsonb_each_text(v_rule.whatsapp_variables) as w
                ), '{}');
            end if;
        end if;
        update public.notification_deliveries as d
        set
            status = 'sending',
            attempts = d.attempts + case when d.status = 'sending' then 0 else 1 end,
            next_attempt_at = pg_catalog.now() + v_lease,
            body = v_body,
            content_variables = v_delivery.content_variables,
            segments = private.sms_segments(v_body),
            updated_at = pg_catalog.now()
        where d.id = v_delivery.id;
        v_used := v_used + 1;
        id := v_delivery.id;
        channel := v_delivery.channel;
        address := v_delivery.address;
        body := v_body;
        content_sid := v_delivery.content_sid;
        content_variables := v_delivery.content_variables;
        lookup := v_delivery.status = 'sending';
        created_at := v_delivery.created_at;
        attempts := v_delivery.attempts;
        return next;
    end loop;
    perform private.return_send_tokens(v_granted - v_used);
end
$fn$;

-- Record what Twilio answered to the send of delivery p_delivery_id. p_outcome: 'accepted'
-- (201, p_sid and p_provider_status), 'unknown' (timeout or connection lost after the request
-- may have left: the row stays sending and is looked up before any resend), or 'error' (a REST
-- error, p_error_code and p_http_status), classified by private.twilio_error_actions: permanent
-- and no_resend -> failed; opt_out -> suppressed and the number opted out; template -> resend
-- as the rule's WhatsApp template, else as SMS; retry (and 429, 5xx) -> queued again after a
-- backoff with jitter, failed past notification_max_attempts. Returns the resulting status.
create or replace function private.record_notification_send(
    p_delivery_id uuid,
    p_outcome text,
    p_sid text,
    p_provider_status text,
    p_error_code integer,
    p_error_message text,
    p_http_status integer
)
returns text
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_delivery public.notification_deliveries;
    v_rule public.notification_rules;
    v_action text;
    v_status text;
begin
    select d.* into v_delivery from public.notification_deliveries as d
    where d.id = p_delivery_id for update;
    if v_delivery.id is null then
        return null;
    end if;
    if p_outcome = 'accepted' then
        perform private.apply_delivery_status(
            p_delivery_id, p_sid, coalesce(p_provider_status, 'queued'), null, null
        );
        update public.notification_deliveries as d
        set error_code = null, error_message = null
        where d.id = p_delivery_id and d.error_code is not null
            and d.status not in ('undelivered', 'failed');
        select d.status into v_status from public.notification_deliveries as d
        where d.id = p_delivery_id;
        return v_status;
    elsif p_outcome = 'unknown' then
        update public.notification_deliveries as d
        set
            next_attempt_at = pg_catalog.now() + interval '30 seconds',
            error_message = coalesce(p_error_message, 'no answer from Twilio')
            || ': looked up before any resend',
            updated_at = pg_catalog.now()
        where d.id = p_delivery_id and d.status = 'sending';
        return 'sending';
    end if;

    select a.action into v_action from private.twilio_error_actions as a where a.code = p_error_code;
    v_action := coalesce(
        v_action,
        case when p_http_status = 429 or p_http_status >= 500 then 'retry' else 'permanent' end
    );
    select r.* into v_rule from public.notification_rules as r where r.id = v_delivery.rule_id;
    if v_action = 'template' and v_delivery.channel = 'whatsapp'
        and v_delivery.content_sid is null and v_rule.whatsapp_content_sid is not null then
        v_status := 'queued';
        update public.notification_deliveries as d
        set content_sid = v_rule.whatsapp_content_sid, content_variables = '{}'
        where d.id = p_delivery_id;
    elsif v_action = 'template' and v_delivery.channel = 'whatsapp'
        and 'sms' = any(v_rule.channels) then
        -- Fall back to SMS on the same number (same dedupe key: still one message per event).
        v_status := 'queued';
        update public.notification_deliveries as d
        set channel = 'sms', address = pg_catalog.replace(d.address, 'whatsapp:', '')
        where d.id = p_delivery_id;
    elsif v_action = 'opt_out' then
        perform private.opt_out_address(
            v_delivery.address, v_delivery.channel, 'error ' || p_error_code
        );
        v_status := 'suppressed';
    elsif v_action = 'retry'
        and v_delivery.attempts < private.limit_value('notification_max_attempts') then
        v_status := 'queued';
    else
        v_status := 'failed';
    end if;
    update public.notification_deliveries as d
    set
        status = v_status,
        suppressed_reason = case when v_status = 'suppressed' then 'opted_out' end,
        error_code = p_error_code,
        error_message = p_error_message,
        next_attempt_at = case
            when v_status = 'queued' and v_action = 'retry' then pg_catalog.now()
                + pg_catalog.make_interval(secs => least(3600, 15 * 2 ^ (d.attempts - 1))
                    * (0.5 + pg_catalog.random() / 2))
        end,
        updated_at = pg_catalog.now()
    where d.id = p_delivery_id;
    perform private.sync_reservation_reminder_flags(v_delivery.reservation_id);
    return v_status;
end
$fn$;

revoke execute on function private.take_send_tokens(integer, double precision) from public;
revoke execute on function private.return_send_tokens(integer) from public;
revoke execute on function private.notification_values(uuid, text, text) from public;
revoke execute on function private.send_time_refusal(public.notification_deliveries) from public;
revoke execute on function private.claim_notification_deliveries(
    integer, double precision, text, text, text[]
) from public;

revoke execute on function private.record_notification_send(
    uuid, text, text, text, integer, text, integer
) from public;
