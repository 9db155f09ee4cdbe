-- Patient messaging: notification rules and templates as data, the transactional outbox
-- (notification_deliveries) filled by triggers, opt-outs, the Twilio inbox (one more inbox of
-- the shared mechanism), the send budget shared by every worker, and profile.timezone that can
-- be unset (distinct from UTC). Functions, triggers and policies follow, as in
-- supabase/functions-sql/{messaging_*,notification_*,twilio_inbox,reminders}.sql and
-- supabase/policies/{notification_rules,notification_deliveries,message_opt_outs,
-- twilio_webhook_events,twilio_send_budget,messaging_placeholders,twilio_error_actions}.sql.

-- Types and tables -------------------------------------------------------------------------

-- An unset zone is null, no longer 'UTC': a patient who never chose one gets the practitioner's
-- or pharmacy's zone. Patients who kept the old default never chose it.
alter table public.profile alter column timezone drop not null;
alter table public.profile alter column timezone drop default;
update public.profile set timezone = null
where role = 'patient' and timezone = 'UTC';

-- The placeholders a template may use; is_phi ones render only in chat unless the rule allows
-- PHI. max_length is what template validation assumes a value can take (segment counting).
create table private.messaging_placeholders (
    name text primary key,
    is_phi boolean not null default false,
    max_length integer not null check (max_length > 0),
    description text not null
);

insert into private.messaging_placeholders (name, is_phi, max_length, description) values
('patient_first_name', false, 20, 'The patient''s first name'),
('pharmacy_name', false, 30, 'The fulfilling pharmacy''s name'),
('practitioner_name', true, 30, 'The practitioner (discloses a speciality: PHI)'),
('service_name', true, 30, 'The booked service (can disclose a diagnosis: PHI)'),
('appointment_time', false, 22, 'The appointment, in the recipient''s time zone'),
('tracking_number', false, 30, 'The carrier''s tracking number'),
('carrier', false, 12, 'The carrier'),
('tracking_url', false, 60, 'The carrier''s tracking page'),
('estimated_delivery', false, 16, 'The estimated delivery day, recipient''s zone'),
('support_phone', false, 16, 'SUPPORT_PHONE'),
('app_link', false, 60, 'APP_BASE_URL, with the ticket or booking path'),
('medication', true, 40, 'The medication (PHI)');

-- What a Twilio error code means for a delivery (FACTS.md): permanent -> failed at once;
-- opt_out -> suppressed and the number opted out; template -> resend as the WhatsApp template
-- or fall back to SMS; retry -> backoff with jitter up to the limit; no_resend -> failed.
create table private.twilio_error_actions (
    code integer primary key,
    action text not null check (
        action in ('permanent', 'opt_out', 'template', 'retry', 'no_resend')
    ),
    description text not null
);

insert into private.twilio_error_actions (code, action, description) values
(21211, 'permanent', 'Invalid To number'),
(21614, 'permanent', 'To number is not a mobile number'),
(21408, 'permanent', 'Region not enabled on the account'),
(30005, 'permanent', 'Unknown handset'),
(30006, 'permanent', 'Landline or unreachable carrier'),
(21610, 'opt_out', 'The recipient replied STOP'),
(63014, 'opt_out', 'The user blocked the WhatsApp sender'),
(63016, 'template', 'Outside the WhatsApp 24 h window: needs an approved template'),
(20429, 'retry', 'Too many concurrent requests (never processed)'),
(21611, 'retry', 'Sender queue full'),
(30001, 'retry', 'Sender queue overflow'),
(30003, 'retry', 'Handset unreachable'),
(30008, 'retry', 'Unknown error'),
(30007, 'no_resend', 'Carrier filtered: do not resend the same content');

create table public.notification_rules (
    id uuid primary key default gen_random_uuid(),
    name text not null unique,
    event text not null check (event in (
        'ticket_status', 'reservation_confirmed', 'reservation_cancelled',
        'reservation_reminder_24h', 'reservation_reminder_2h', 'reservation_rejected',
        'reservation_request_expired'
    )),
    ticket_type text references public.ticket_types (ticket_type),
    status text,
    audience text not null default 'patient' check (
        audience in ('patient', 'primary', 'secondary')
    ),
    channels text[] not null check (
        channels <> '{}' and channels <@ array['sms', 'whatsapp', 'chat', 'email']
    ),
    sms_template text,
    whatsapp_content_sid text check (whatsapp_content_sid ~ '^HX[0-9a-fA-F]{32}$'),
    -- {"1": "patient_first_name", "2": "tracking_url"}: the template's numbered variables.
    whatsapp_variables jsonb not null default '{}' check (
        jsonb_typeof(whatsapp_variables) = 'object'
    ),
    chat_template text,
    delay_minutes integer not null default 0 check (delay_minutes between 0 and 10080),
    quiet_hours boolean not null default true,
    allow_phi boolean not null default false,
    -- Placeholders without which nothing is sent (the delivery is suppressed, reason named).
    required_placeholders text[] not null default '{}',
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- A ticket_status rule names a type and one of its statuses; other events name neither.
    constraint notification_rules_ticket_status_check check (
        (event = 'ticket_status') = (ticket_type is not null and status is not null)
    ),
    constraint notification_rules_status_fkey foreign key (ticket_type, status)
    references public.ticket_statuses (ticket_type, status)
);

-- Covering index of the status foreign key; also how a status change finds its rules.
create index notification_rules_ticket_status_idx
on public.notification_rules (ticket_type, status);
create index notification_rules_event_idx on public.notification_rules (event) where is_active;

create table public.notification_deliveries (
    id uuid primary key default gen_random_uuid(),
    rule_id uuid references public.notification_rules (id) on delete set null,
    event text not null,
    recipient_id uuid references public.profile (id) on delete set null,
    channel text not null check (channel in ('sms', 'whatsapp', 'chat', 'email')),
    address text,
    body text,
    ticket_id uuid references public.healthcare_tickets (id) on delete cascade,
    reservation_id uuid references public.reservation (id) on delete cascade,
    request_id uuid references public.reservation_request (id) on delete cascade,
    -- The appointment a reservation message is about (part of a reminder's dedupe key).
    appointment_time timestamptz,
    recipient_timezone text,
    dedupe_key text not null,
    status text not null default 'queued' check (status in (
        'queued', 'scheduled', 'sending', 'sent', 'delivered', 'read', 'undelivered', 'failed',
        'suppressed', 'cancelled'
    )),
    suppressed_reason text,
    not_before timestamptz not null default now(),
    attempts integer not null default 0,
    -- For 'sending', the end of the sender's lease; for a retry, when it is due.
    next_attempt_at timestamptz,
    error_code integer,
    error_message text,
    provider_message_id text,
    provider_status text,
    -- WhatsApp: the approved template sent instead of free text (after 63016, or always).
    content_sid text,
    content_variables jsonb,
    segments integer,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    sent_at timestamptz,
    delivered_at timestamptz,
    read_at timestamptz,
    -- No event is ever delivered twice on one channel.
    constraint notification_deliveries_dedupe_key_key unique (dedupe_key),
    constraint notification_deliveries_suppressed_check check (
        (status in ('suppressed', 'cancelled')) = (suppressed_reason is not null)
    )
);

-- What the sender claims: due rows of the phone channels, oldest first.
create index notification_deliveries_due_idx on public.notification_deliveries (not_before)
where status in ('queued', 'scheduled', 'sending') and channel in ('sms', 'whatsapp');
create index notification_deliveries_chat_due_idx on public.notification_deliveries (not_before)
where status in ('queued', 'scheduled') and channel = 'chat';
-- Callbacks find their delivery by Twilio's sid.
create unique index notification_deliveries_provider_message_id_key
on public.notification_deliveries (provider_message_id);
create index notification_deliveries_rule_id_idx on public.notification_deliveries (rule_id);
create index notification_deliveries_recipient_id_idx
on public.notification_deliveries (recipient_id, created_at);
create index notification_deliveries_ticket_id_idx on public.notification_deliveries (ticket_id);
create index notification_deliveries_reservation_id_idx
on public.notification_deliveries (reservation_id);
create index notification_deliveries_request_id_idx on public.notification_deliveries (request_id);
-- The daily cap of an unverified booking phone counts by address.
create index notification_deliveries_address_idx
on public.notification_deliveries (address, created_at);

-- Opted-out numbers, per channel ('sms' and 'whatsapp'), keyed by the E.164 number.
create table private.message_opt_outs (
    address text not null check (address ~ '^\+[1-9][0-9]{6,14}$'),
    channel text not null check (channel in ('sms', 'whatsapp')),
    opted_out_at timestamptz not null default now(),
    source text not null,
    primary key (address, channel)
);

-- The Twilio inbox: status callbacks and inbound messages, stored before the 2xx.
create table private.twilio_webhook_events (
    id uuid primary key default gen_random_uuid(),
    seq bigint generated always as identity,
    received_at timestamptz not null default now(),
    kind text not null check (kind in ('status', 'inbound')),
    message_sid text,
    message_status text,
    delivery_id uuid,
    from_address text,
    to_address text,
    error_code integer,
    params jsonb not null,
    client_addr text,
    -- (MessageSid, MessageStatus) for callbacks, never MessageSid alone; MessageSid for inbound.
    dedupe_key text not null,
    status text not null default 'pending'
    check (status in ('pending', 'processed', 'ignored', 'failed')),
    attempts integer not null default 0,
    processed_at timestamptz,
    note text,
    constraint twilio_webhook_events_dedupe_key_key unique (dedupe_key)
);

create index twilio_webhook_events_pending_idx on private.twilio_webhook_events (seq)
where status = 'pending';
create index twilio_webhook_events_delivery_id_idx on private.twilio_webhook_events (delivery_id);
create index twilio_webhook_events_seq_idx on private.twilio_webhook_events (seq);

-- TWILIO_MAX_SENDS_PER_SECOND for every worker together: one token bucket, in messages.
create table private.twilio_send_budget (
    id boolean primary key default true check (id),
    tokens double precision not null,
    updated_at timestamptz not null default clock_timestamp()
);

insert into private.twilio_send_budget (tokens) values (0);

insert into private.limits (name, value, description) values
(
    'booking_phone_messages_per_day', 3,
    'Messages an unverified booking phone (no account) may receive in 24 hours'
),
('notification_max_attempts', 6, 'Send attempts of one SMS/WhatsApp delivery before failed'),
(
    'notification_send_lease_seconds', 60,
    'How long a claimed delivery stays sending before another worker looks it up'
);

-- Functions and triggers ---------------------------------------------------------------

-- profile.timezone may be unset (null, no longer 'UTC'): an unset patient zone means the
-- practitioner's or pharmacy's. Staff keep a zone, since their calendars are generated in it.

-- BEFORE INSERT on profile: a staff profile without a zone gets UTC, as before.
create or replace function private.default_staff_timezone()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    if new.timezone is null and new.role <> 'patient' then
        new.timezone := 'UTC';
    end if;
    return new;
end
$fn$;

revoke execute on function private.default_staff_timezone() from public;

drop trigger if exists default_staff_timezone on public.profile;
create trigger default_staff_timezone
before insert on public.profile
for each row execute function private.default_staff_timezone();

-- Notification rules and their templates: placeholders, rendering, SMS segment counting and the
-- validation that runs when a rule is saved (unknown placeholder: 22023 naming it; an SMS text
-- that can render past 3 segments: 22023 with the count).

-- The placeholder names in p_template, in order of appearance, each once.
create or replace function private.template_placeholders(p_template text)
returns text[]
language sql immutable
set search_path = ''
as $fn$
    select coalesce(array_agg(distinct m[1]), '{}')
    from pg_catalog.regexp_matches(coalesce(p_template, ''), '\{([^{}]*)\}', 'g') as m
$fn$;

-- Whether every character of p_text is in the GSM-7 alphabet (basic set and extension table);
-- one other character makes the whole message UCS-2.
create or replace function private.is_gsm7(p_text text)
returns boolean
language sql immutable
set search_path = ''
as $fn$
    select coalesce(p_text, '') ~ (
        '^[A-Za-z0-9 @£$¥èéùìòÇØøÅå_ÆæßÉ!"#¤%&''()*+,\-./:;<=>?¡ÄÖÑÜ§¿äöñüà'
        || E'\n\r\f^{}\\\\\\[~\\]|€]*$'
    )
$fn$;

-- How many SMS segments p_text takes: GSM-7 160 (153 per part when split), UCS-2 70 (67);
-- the extension characters of GSM-7 count twice.
create or replace function private.sms_segments(p_text text)
returns integer
language sql immutable
set search_path = ''
as $fn$
    with measured as (
        select
            private.is_gsm7(p_text) as gsm,
            case
                when private.is_gsm7(p_text)
                    then pg_catalog.length(coalesce(p_text, ''))
                    + pg_catalog.length(pg_catalog.regexp_replace(
                        coalesce(p_text, ''), E'[^\\^{}\\\\\\[~\\]|€\f]', '', 'g'
                    ))
                else pg_catalog.length(coalesce(p_text, ''))
            end as units
    )
    select case
        when units = 0 then 0
        when gsm and units <= 160 then 1
        when gsm then ceil(units / 153.0)::integer
        when units <= 70 then 1
        else ceil(units / 67.0)::integer
    end
    from measured
$fn$;

-- p_template with each {placeholder} replaced by its value in p_values (none renders as
-- nothing). PHI placeholders render only when p_allow_phi (chat, or a rule allowed PHI).
create or replace function private.render_template(
    p_template text, p_values jsonb, p_allow_phi boolean
)
returns text
language plpgsql stable
set search_path = ''
as $fn$
declare
    v_text text := p_template;
    v_name text;
    v_phi boolean;
begin
    if v_text is null then
        return null;
    end if;
    foreach v_name in array private.template_placeholders(p_template) loop
        select ph.is_phi into v_phi from private.messaging_placeholders as ph where ph.name = v_name;
        v_text := pg_catalog.replace(
            v_text, '{' || v_name || '}',
            case when coalesce(v_phi, true) and not p_allow_phi then '' else
                coalesce(p_values ->> v_name, '') end
        );
    end loop;
    -- A missing value must not leave a double space or a space before punctuation.
    return pg_catalog.btrim(pg_catalog.regexp_replace(
        pg_catalog.regexp_replace(v_text, ' {2,}', ' ', 'g'), ' ([.,:;!?])', '\1', 'g'
    ));
end
$fn$;

-- The longest text p_template can render to (each placeholder at its longest).
create or replace function private.template_worst_case(p_template text, p_allow_phi boolean)
returns text
language sql stable
set search_path = ''
as $fn$
    select private.render_template(
        p_template,
        coalesce(
            (select pg_catalog.jsonb_object_agg(ph.name, pg_catalog.repeat('x', ph.max_length))
             from private.messaging_placeholders as ph),
            '{}'
        ),
        p_allow_phi
    )
$fn$;

-- BEFORE INSERT OR UPDATE on notification_rules: the rule is valid when saved. Raises 22023
-- naming the unknown placeholder, the segment count of an SMS text past 3 segments, a
-- reservation rule addressed to a provider, a quiet-hours exemption for a status that is not
-- time-critical; 42501 when someone other than an admin (or the system) allows PHI.
create or replace function private.validate_notification_rule()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_unknown text;
    v_segments integer;
begin
    select u.name into v_unknown
    from pg_catalog.unnest(
        private.template_placeholders(new.sms_template)
        || private.template_placeholders(new.chat_template)
        || new.required_placeholders
        || coalesce(array(
            select pg_catalog.btrim(v.value, '{}')
            from pg_catalog.jsonb_each_text(new.whatsapp_variables) as v
        ), '{}')
    ) as u (name)
    where not exists (select from private.messaging_placeholders as ph where ph.name = u.name)
    limit 1;
    if v_unknown is not null then
        raise exception 'rule %: unknown placeholder {%}', new.name, v_unknown
            using errcode = '22023',
            hint = 'Use one of the names in private.messaging_placeholders (see the README).';
    end if;
    if ('sms' = any(new.channels) or 'whatsapp' = any(new.channels))
        and new.sms_template is null then
        raise exception 'rule %: an SMS or WhatsApp rule needs sms_template', new.name
            using errcode = '22023', hint = 'Write the text sent by SMS (and as WhatsApp text).';
    end if;
    if 'chat' = any(new.channels) and new.chat_template is null then
        raise exception 'rule %: a chat rule needs chat_template', new.name
            using errcode = '22023', hint = 'Write the system message posted in the thread.';
    end if;
    v_segments := private.sms_segments(
        private.template_worst_case(new.sms_template, new.allow_phi)
    );
    if v_segments > 3 then
        raise exception 'rule %: the SMS text can render to % segments (at most 3)',
            new.name, v_segments
            using errcode = '22023',
            hint = 'Shorten the text or drop a placeholder; one non-GSM character makes every '
            || 'segment 70 characters.';
    end if;
    if new.event like 'reservation%' and new.audience <> 'patient' then
        raise exception 'rule %: reservation messages go to the patient only', new.name
            using errcode = '22023', hint = 'Set audience to patient.';
    end if;
    if not new.quiet_hours and not (new.event = 'ticket_status' and new.status = 'out_for_delivery')
    then
        raise exception 'rule %: only time-critical statuses (out_for_delivery) may ignore quiet '
            'hours', new.name
            using errcode = '22023', hint = 'Keep quiet_hours on; the message waits until 08:00.';
    end if;
    if new.allow_phi and (tg_op = 'INSERT' or not old.allow_phi)
        and private.is_api_request() and not private.is_admin() then
        raise exception 'only an admin may allow PHI in a rule''s SMS and WhatsApp texts (42501)'
            using errcode = '42501';
    end if;
    new.updated_at := pg_catalog.now();
    return new;
end
$fn$;

revoke execute on function private.template_placeholders(text) from public;
revoke execute on function private.is_gsm7(text) from public;
revoke execute on function private.sms_segments(text) from public;
revoke execute on function private.render_template(text, jsonb, boolean) from public;
revoke execute on function private.template_worst_case(text, boolean) from public;
revoke execute on function private.validate_notification_rule() from public;
grant execute on function private.template_placeholders(text) to authenticated, service_role;
grant execute on function private.is_gsm7(text) to authenticated, service_role;
grant execute on function private.sms_segments(text) to authenticated, service_role;
grant execute on function private.render_template(text, jsonb, boolean) to service_role;
grant execute on function private.template_worst_case(text, boolean) to service_role;

drop trigger if exists validate_notification_rule on public.notification_rules;
create trigger validate_notification_rule
before insert or update on public.notification_rules
for each row execute function private.validate_notification_rule();

-- The outbox: notification_deliveries rows queued by triggers in the transaction of the change
-- that causes them (never for app.source = 'backfill'), one per event x rule x recipient x
-- channel under a unique dedupe key. Consent, opt-outs, quiet hours and the booking phone's daily
-- cap are decided here, at queue time, so the row shows what will happen; the sender checks
-- them again at send time (messaging_delivery.sql).

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

-- Sending the outbox: the send budget every worker shares, claiming due SMS/WhatsApp rows
-- (for update skip locked) with the send-time checks and the body rendered from the current
-- rows, recording Twilio's answer by error class, applying delivery statuses only forward,
-- chat deliveries as system messages, and the operators' retry and cancel.

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
-- the current rows: consent, opt-out, the reservation still confirmed at the same time, the
-- reminder's moment not past.
create or replace function private.send_time_refusal(p_delivery public.notification_deliveries)
returns text
language sql stable
security definer
set search_path = ''
as $fn$
    select case
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
                    when v_refusal in ('rescheduled', 'moment_passed', 'reservation_not_confirmed')
                        then 'cancelled'
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

revoke execute on function private.take_send_tokens(integer, double precision) from public;
revoke execute on function private.return_send_tokens(integer) from public;
revoke execute on function private.notification_values(uuid, text, text) from public;
revoke execute on function private.send_time_refusal(public.notification_deliveries) from public;
revoke execute on function private.claim_notification_deliveries(
    integer, double precision, text, text, text[]
) from public;
revoke execute on function private.opt_out_address(text, text, text) from public;
revoke execute on function private.delivery_status_rank(text) from public;
revoke execute on function private.apply_delivery_status(uuid, text, text, integer, text)
from public;
revoke execute on function private.record_notification_send(
    uuid, text, text, text, integer, text, integer
) from public;
revoke execute on function private.twilio_sid_from_callbacks(uuid) from public;
revoke execute on function private.deliver_chat_notifications(integer, text, text) from public;
revoke execute on function private.retry_notification_delivery(uuid) from public;
revoke execute on function private.cancel_notification_delivery(uuid) from public;
grant execute on function private.delivery_status_rank(text) to service_role;

-- The Twilio inbox, one more inbox of the shared mechanism (app/webhooks/inbox.py): status
-- callbacks and inbound messages stored before the 2xx, deduplicated on (MessageSid,
-- MessageStatus) for callbacks and on MessageSid for inbound messages, processed by the worker.

-- Store one request of kind p_kind ('status' or 'inbound') with its form parameters p_params
-- and the delivery id of the callback's URL; returns (event id, status, duplicate, error) as
-- every provider's storing call does.
create or replace function private.receive_twilio_delivery(
    p_kind text, p_params jsonb, p_delivery_id text, p_client_addr text
)
returns table (event_id uuid, event_status text, duplicate boolean, error text)
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_sid text := nullif(p_params ->> 'MessageSid', '');
    v_key text;
    v_delivery uuid;
begin
    v_key := case
        when p_kind = 'status' then
            'status:' || coalesce(v_sid, '-') || ':' || coalesce(p_params ->> 'MessageStatus', '-')
        else 'inbound:' || coalesce(v_sid, pg_catalog.md5(p_params::text))
    end;
    if p_delivery_id ~ '^[0-9a-fA-F-]{36}$' then
        v_delivery := p_delivery_id::uuid;
    end if;
    insert into private.twilio_webhook_events (
        kind, message_sid, message_status, delivery_id, from_address, to_address, error_code,
        params, client_addr, dedupe_key
    ) values (
        p_kind, v_sid, nullif(p_params ->> 'MessageStatus', ''), v_delivery,
        nullif(p_params ->> 'From', ''), nullif(p_params ->> 'To', ''),
        case when p_params ->> 'ErrorCode' ~ '^[0-9]{1,9}$' then (p_params ->> 'ErrorCode')::integer end,
        p_params, p_client_addr, v_key
    )
    on conflict (dedupe_key) do nothing
    returning id, status, false, null::text into event_id, event_status, duplicate, error;
    if event_id is null then
        select e.id, e.status, true, null::text into event_id, event_status, duplicate, error
        from private.twilio_webhook_events as e where e.dedupe_key = v_key;
    end if;
    return next;
end
$fn$;

-- An inbound message: STOP (Twilio's OptOutType or the keywords) opts the number out of the
-- channel it wrote on, START opts it back in, HELP is recorded (Twilio answers it); any other
-- reply is recorded and, when the number is exactly one patient's, posted (as that patient) to
-- their most recently active open ticket's thread for the care team. Returns the note.
create or replace function private.process_twilio_inbound(p_event private.twilio_webhook_events)
returns text
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_channel text := case when p_event.from_address like 'whatsapp:%' then 'whatsapp' else 'sms' end;
    v_number text := pg_catalog.replace(p_event.from_address, 'whatsapp:', '');
    v_body text := coalesce(p_event.params ->> 'Body', '');
    v_word text := pg_catalog.upper(pg_catalog.btrim(coalesce(p_event.params ->> 'Body', '')));
    v_type text := pg_catalog.upper(coalesce(p_event.params ->> 'OptOutType', ''));
    v_patient uuid;
    v_thread uuid;
    v_ticket uuid;
begin
    if v_type = 'STOP' or v_word in (
        'STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'REVOKE', 'OPTOUT'
    ) then
        perform private.opt_out_address(v_number, v_channel, 'inbound ' || v_word);
        return 'opted out of ' || v_channel;
    elsif v_type = 'START' or v_word in ('START', 'YES', 'UNSTOP') then
        delete from private.message_opt_outs as o
        where o.address = v_number and o.channel = v_channel;
        return 'opted back in to ' || v_channel;
    elsif v_type = 'HELP' or v_word in ('HELP', 'INFO') then
        return 'help request (answered by Twilio)';
    end if;
    select pg_catalog.min(p.id::text)::uuid into v_patient
    from public.profile as p where p.phone = v_number and p.role = 'patient'
    having pg_catalog.count(*) = 1;
    if v_patient is null then
        return 'reply recorded (no single patient has this number)';
    end if;
    select t.id, th.id into v_ticket, v_thread
    from public.healthcare_tickets as t
    inner join public.ticket_statuses as s on s.ticket_type = t.ticket_type and s.status = t.status
    inner join public.chat_threads as th on th.ticket_id = t.id
    where t.patient_id = v_patient and not s.is_terminal
    order by t.updated_at desc
    limit 1;
    if v_thread is null then
        return 'reply recorded (the patient has no open ticket)';
    end if;
    begin
        insert into public.chat_messages (thread_id, sender_id, body, kind, metadata)
        values (
            v_thread, v_patient, pg_catalog.left(v_body, 1600), 'text',
            pg_catalog.jsonb_build_object('via', v_channel, 'twilio_event_id', p_event.id)
        );
    exception when sqlstate 'CH004' then
        return 'reply recorded (ticket ' || v_ticket || ' refuses messages)';
    end;
    return 'reply posted to ticket ' || v_ticket;
end
$fn$;

-- Process up to p_limit pending Twilio events in arrival order (skip locked: lanes and workers
-- share the inbox); returns how many.
create or replace function private.process_twilio_events(p_limit integer default 100)
returns integer
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_event private.twilio_webhook_events;
    v_note text;
    v_done integer := 0;
begin
    for v_event in
        select e.* from private.twilio_webhook_events as e
        where e.status = 'pending'
        order by e.seq
        limit p_limit
        for update skip locked
    loop
        v_done := v_done + 1;
        if v_event.kind = 'status' then
            v_note := private.apply_delivery_status(
                v_event.delivery_id, v_event.message_sid, v_event.message_status,
                v_event.error_code, nullif(v_event.params ->> 'ErrorMessage', '')
            );
            if v_note = 'no delivery' and v_event.delivery_id is not null then
                v_note := private.apply_delivery_status(
                    null, v_event.message_sid, v_event.message_status,
                    v_event.error_code, nullif(v_event.params ->> 'ErrorMessage', '')
                );
            end if;
        else
            v_note := private.process_twilio_inbound(v_event);
        end if;
        update private.twilio_webhook_events as e
        set
            status = case when v_note = 'no delivery' then 'ignored' else 'processed' end,
            attempts = e.attempts + 1, processed_at = pg_catalog.now(), note = v_note
        where e.id = v_event.id;
    end loop;
    return v_done;
end
$fn$;

revoke execute on function private.receive_twilio_delivery(text, jsonb, text, text) from public;
revoke execute on function private.process_twilio_inbound(private.twilio_webhook_events)
from public;
revoke execute on function private.process_twilio_events(integer) from public;

-- Reservation messages: confirmed, cancelled, rejected, expired, and the reminders 24 h and 2 h
-- before time_slot.start_time, queued by triggers; a cancelled or moved reservation's pending
-- reminders are cancelled (a moved one gets reminders for its new time, the appointment time
-- being part of their dedupe key). reservation.reminder_*_{scheduled,sent} follow the outbox.
-- move_time_slot lets a practitioner reschedule a slot.

-- Set reservation p_reservation_id's reminder flags from its deliveries for its current time.
create or replace function private.sync_reservation_reminder_flags(p_reservation_id uuid)
returns void
language sql
security definer
set search_path = ''
as $fn$
    with truth as (
        select
            r.id,
            pg_catalog.bool_or(d.event = 'reservation_reminder_24h'
                and d.status in ('queued', 'scheduled', 'sending')) as s24,
            pg_catalog.bool_or(d.event = 'reservation_reminder_24h'
                and d.status in ('sent', 'delivered', 'read')) as t24,
            pg_catalog.bool_or(d.event = 'reservation_reminder_2h'
                and d.status in ('queued', 'scheduled', 'sending')) as s2,
            pg_catalog.bool_or(d.event = 'reservation_reminder_2h'
                and d.status in ('sent', 'delivered', 'read')) as t2
        from public.reservation as r
        inner join public.time_slot as s on r.slot_id = s.id
        left join public.notification_deliveries as d
            on d.reservation_id = r.id and d.appointment_time = s.start_time
        where r.id = p_reservation_id
        group by r.id
    )
    update public.reservation as r
    set
        reminder_24h_scheduled = coalesce(truth.s24, false),
        reminder_24h_sent = coalesce(truth.t24, false),
        reminder_2h_scheduled = coalesce(truth.s2, false),
        reminder_2h_sent = coalesce(truth.t2, false)
    from truth
    where
        r.id = truth.id
        and (r.reminder_24h_scheduled, r.reminder_24h_sent, r.reminder_2h_scheduled,
            r.reminder_2h_sent)
        is distinct from (coalesce(truth.s24, false), coalesce(truth.t24, false),
            coalesce(truth.s2, false), coalesce(truth.t2, false))
$fn$;

-- Cancel reservation p_reservation_id's reminders not yet sent (all, or those for another
-- appointment time than p_keep_time), with reason p_reason.
create or replace function private.cancel_reservation_reminders(
    p_reservation_id uuid, p_keep_time timestamptz, p_reason text
)
returns void
language sql
security definer
set search_path = ''
as $fn$
    update public.notification_deliveries as d
    set status = 'cancelled', suppressed_reason = p_reason, updated_at = pg_catalog.now()
    where
        d.reservation_id = p_reservation_id
        and d.event in ('reservation_reminder_24h', 'reservation_reminder_2h')
        and d.status in ('queued', 'scheduled')
        and d.appointment_time is distinct from p_keep_time
$fn$;

-- Queue the reminders of reservation p_reservation_id for the appointment at p_start (none
-- whose moment has already passed). The 24 h reminder goes at the same wall-clock time the day
-- before in the patient's zone (else the practitioner's): across a daylight-saving change that
-- is 23 or 25 hours, never an hour off on the patient's clock.
create or replace function private.schedule_reservation_reminders(
    p_reservation_id uuid, p_start timestamptz
)
returns void
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_zone text;
    v_day_before timestamptz;
begin
    select coalesce(pp.timezone, pr.timezone, 'UTC') into v_zone
    from public.reservation as r
    inner join public.profile as pr on r.profile_id = pr.id
    left join public.profile as pp on r.patient_id = pp.id
    where r.id = p_reservation_id;
    v_day_before := ((p_start at time zone v_zone) - interval '1 day') at time zone v_zone;
    if v_day_before > pg_catalog.now() then
        perform private.queue_notifications(
            'reservation_reminder_24h', null, p_reservation_id, null, p_start, v_day_before
        );
    end if;
    if p_start - interval '2 hours' > pg_catalog.now() then
        perform private.queue_notifications(
            'reservation_reminder_2h', null, p_reservation_id, null, p_start,
            p_start - interval '2 hours'
        );
    end if;
end
$fn$;

-- AFTER INSERT OR UPDATE OF status on reservation: confirmed -> the confirmation and its
-- reminders; cancelled -> its reminders cancelled and the cancellation message; completed or
-- no-show -> pending reminders cancelled.
create or replace function private.queue_reservation_notifications()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_start timestamptz;
begin
    select s.start_time into v_start from public.time_slot as s where s.id = new.slot_id;
    if tg_op = 'INSERT' then
        if new.status = 'confirmed' then
            perform private.queue_notifications(
                'reservation_confirmed', null, new.id, null, v_start, null
            );
            perform private.schedule_reservation_reminders(new.id, v_start);
        end if;
    elsif new.status is distinct from old.status then
        perform private.cancel_reservation_reminders(new.id, null, 'reservation_' || new.status);
        if new.status = 'cancelled' then
            perform private.queue_notifications(
                'reservation_cancelled', null, new.id, null, v_start, null
            );
        end if;
    end if;
    perform private.sync_reservation_reminder_flags(new.id);
    return null;
end
$fn$;

-- AFTER UPDATE OF start_time on time_slot: every confirmed reservation of the slot gets its
-- reminders for the new time; those for the old time are cancelled.
create or replace function private.reschedule_slot_reminders()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_reservation_id uuid;
begin
    for v_reservation_id in
        select r.id from public.reservation as r
        where r.slot_id = new.id and r.status = 'confirmed'
        order by r.id
    loop
        perform private.cancel_reservation_reminders(
            v_reservation_id, new.start_time, 'rescheduled'
        );
        perform private.schedule_reservation_reminders(v_reservation_id, new.start_time);
        perform private.sync_reservation_reminder_flags(v_reservation_id);
    end loop;
    return null;
end
$fn$;

-- AFTER UPDATE OF status on reservation_request: a rejected or expired request tells its
-- patient (an anonymous one on the phone they booked with) that the hold ended.
create or replace function private.queue_request_notifications()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if new.status in ('rejected', 'expired') and new.status is distinct from old.status then
        perform private.queue_notifications(
            case new.status
                when 'rejected' then 'reservation_rejected'
                else 'reservation_request_expired'
            end,
            null, null, new.id, new.requested_time, null
        );
    end if;
    return null;
end
$fn$;

-- Move slot p_slot_id to start at p_start_time, keeping its length. Only its practitioner (or
-- the system) moves it; a blocked or started slot, or a time in the past, raises CH005; an
-- overlap with another slot of the practitioner raises 23P01 (time_slot_no_overlap). Its
-- reservations' reminders follow (trigger reschedule_slot_reminders).
create or replace function private.move_time_slot(p_slot_id uuid, p_start_time timestamptz)
returns public.time_slot
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_slot public.time_slot;
begin
    select s.* into v_slot from public.time_slot as s where s.id = p_slot_id for update;
    if v_slot.id is null or (
        private.is_api_request() and v_slot.profile_id is distinct from (select auth.uid())
    ) then
        raise exception 'time slot % is not one you can move (CH008)', p_slot_id
            using errcode = 'CH008', hint = 'Only the slot''s practitioner moves it; check the id.';
    end if;
    if v_slot.status = 'blocked' or v_slot.start_time <= pg_catalog.now() then
        raise exception 'time slot % is blocked or has started; it cannot be moved (CH005)',
            p_slot_id
            using errcode = 'CH005', hint = 'Move a future slot that is not blocked.';
    end if;
    if p_start_time is null or p_start_time <= pg_catalog.now() then
        raise exception 'time slot % cannot move to % (CH005)', p_slot_id, p_start_time
            using errcode = 'CH005', hint = 'Choose a time in the future.';
    end if;
    update public.time_slot as s
    set start_time = p_start_time, end_time = p_start_time + (v_slot.end_time - v_slot.start_time)
    where s.id = p_slot_id
    returning s.* into v_slot;
    return v_slot;
end
$fn$;

create or replace function public.move_time_slot(p_slot_id uuid, p_start_time timestamptz)
returns public.time_slot
language sql
set search_path = ''
as $fn$
    select private.move_time_slot(p_slot_id, p_start_time)
$fn$;

revoke execute on function private.sync_reservation_reminder_flags(uuid) from public;
revoke execute on function private.cancel_reservation_reminders(uuid, timestamptz, text)
from public;
revoke execute on function private.schedule_reservation_reminders(uuid, timestamptz) from public;
revoke execute on function private.queue_reservation_notifications() from public;
revoke execute on function private.reschedule_slot_reminders() from public;
revoke execute on function private.queue_request_notifications() from public;
revoke execute on function private.move_time_slot(uuid, timestamptz) from public;
revoke execute on function public.move_time_slot(uuid, timestamptz) from public;
grant execute on function private.move_time_slot(uuid, timestamptz) to authenticated, service_role;
grant execute on function public.move_time_slot(uuid, timestamptz) to authenticated, service_role;

drop trigger if exists queue_reservation_notifications on public.reservation;
create trigger queue_reservation_notifications
after insert or update of status on public.reservation
for each row execute function private.queue_reservation_notifications();

drop trigger if exists reschedule_slot_reminders on public.time_slot;
create trigger reschedule_slot_reminders
after update of start_time on public.time_slot
for each row when (old.start_time is distinct from new.start_time)
execute function private.reschedule_slot_reminders();

drop trigger if exists queue_request_notifications on public.reservation_request;
create trigger queue_request_notifications
after update of status on public.reservation_request
for each row execute function private.queue_request_notifications();

-- Policies ------------------------------------------------------------------------------

-- notification_rules: which event tells whom, on which channels, with which texts. Admins read
-- and write them (through the API too); the triggers and the worker read them as the system.

alter table public.notification_rules enable row level security;

revoke all on public.notification_rules from anon, authenticated, service_role;
grant select, insert, update, delete on public.notification_rules to authenticated;
grant select, insert, update, delete on public.notification_rules to service_role;

drop policy if exists "Admins can read notification rules" on public.notification_rules;
create policy "Admins can read notification rules"
on public.notification_rules for select to authenticated
using ((select private.is_admin()));

drop policy if exists "Admins can add notification rules" on public.notification_rules;
create policy "Admins can add notification rules"
on public.notification_rules for insert to authenticated
with check ((select private.is_admin()));

drop policy if exists "Admins can change notification rules" on public.notification_rules;
create policy "Admins can change notification rules"
on public.notification_rules for update to authenticated
using ((select private.is_admin()))
with check ((select private.is_admin()));

drop policy if exists "Admins can delete notification rules" on public.notification_rules;
create policy "Admins can delete notification rules"
on public.notification_rules for delete to authenticated
using ((select private.is_admin()));

-- notification_deliveries: the outbox, written by triggers and the worker only. A recipient
-- reads their own rows' fate; admins read all.

alter table public.notification_deliveries enable row level security;

revoke all on public.notification_deliveries from anon, authenticated, service_role;
grant select on public.notification_deliveries to authenticated;
grant select, insert, update on public.notification_deliveries to service_role;

drop policy if exists "Recipients and admins can read deliveries" on public.notification_deliveries;
create policy "Recipients and admins can read deliveries"
on public.notification_deliveries for select to authenticated
using (recipient_id = (select auth.uid()) or (select private.is_admin()));

-- The messaging tables in private (opt-outs, the Twilio inbox, the shared send budget, the
-- placeholder and error-code catalogues): not exposed; only the service, the worker and
-- operators (system sessions) use them.

revoke all on private.message_opt_outs from public, anon, authenticated, service_role;
revoke all on private.twilio_webhook_events from public, anon, authenticated, service_role;
revoke all on private.twilio_send_budget from public, anon, authenticated, service_role;
revoke all on private.messaging_placeholders from public, anon, authenticated, service_role;
revoke all on private.twilio_error_actions from public, anon, authenticated, service_role;
-- The default rules: the eight statuses of the pharmacy feed (and picked up), reservations.
-- No PHI in SMS or WhatsApp texts: no medication, diagnosis, service or clinician; the chat
-- texts (in the ticket's thread, behind sign-in) may name the medication.
insert into public.notification_rules (
    name, event, ticket_type, status, channels, sms_template, chat_template, quiet_hours,
    required_placeholders
) values
(
    'Prescription sent to the pharmacy', 'ticket_status', 'prescription', 'sent',
    '{sms,whatsapp,chat}',
    'Hi {patient_first_name}, your prescription was sent to {pharmacy_name}. '
    || 'Follow it in the app: {app_link}',
    'Your prescription for {medication} was sent to {pharmacy_name}.', true, '{}'
),
(
    'Prescription received by the pharmacy', 'ticket_status', 'prescription', 'received',
    '{sms,whatsapp,chat}',
    'Hi {patient_first_name}, {pharmacy_name} has received your order. Details: {app_link}',
    '{pharmacy_name} received the order for {medication}.', true, '{}'
),
(
    'Prescription being prepared', 'ticket_status', 'prescription', 'processing',
    '{sms,whatsapp,chat}',
    '{pharmacy_name} is preparing your order. Details: {app_link}',
    '{pharmacy_name} is preparing {medication}.', true, '{}'
),
(
    'Prescription ready for pickup', 'ticket_status', 'prescription', 'ready',
    '{sms,whatsapp,chat}',
    'Hi {patient_first_name}, your order is ready for pickup at {pharmacy_name}. '
    || 'Details: {app_link}',
    '{medication} is ready for pickup at {pharmacy_name}.', true, '{}'
),
(
    'Prescription shipped', 'ticket_status', 'prescription', 'shipped',
    '{sms,whatsapp,chat}',
    'Your order from {pharmacy_name} has shipped with {carrier}, tracking '
    || '{tracking_number}: {tracking_url} Expected {estimated_delivery}.',
    '{medication} shipped with {carrier}, tracking {tracking_number}.', true, '{tracking_number}'
),
(
    'Prescription out for delivery', 'ticket_status', 'prescription', 'out_for_delivery',
    '{sms,whatsapp,chat}',
    'Your order is out for delivery today. Track it: {tracking_url}',
    '{medication} is out for delivery today.', false, '{}'
),
(
    'Prescription delivered', 'ticket_status', 'prescription', 'delivered',
    '{sms,whatsapp,chat}',
    'Your order was delivered. How did we do? Tell us in the app: {app_link}',
    '{medication} was delivered. How did we do? Rate the delivery in the app.', true, '{}'
),
(
    'Prescription picked up', 'ticket_status', 'prescription', 'completed',
    '{sms,whatsapp,chat}',
    'Thanks for collecting your order at {pharmacy_name}. Questions? {app_link}',
    '{medication} was collected at {pharmacy_name}.', true, '{}'
),
(
    'Prescription cancelled', 'ticket_status', 'prescription', 'cancelled',
    '{sms,whatsapp,chat}',
    'Your prescription order was cancelled. Questions? Call us at {support_phone}.',
    'The order for {medication} was cancelled. Call {support_phone} with any question.', true, '{}'
),
(
    'Prescription failed', 'ticket_status', 'prescription', 'failed',
    '{sms,whatsapp,chat}',
    'We could not complete your prescription order. Please call us at {support_phone}.',
    'The order for {medication} could not be completed. Please call {support_phone}.', true, '{}'
);

insert into public.notification_rules (name, event, channels, sms_template) values
(
    'Appointment confirmed', 'reservation_confirmed', '{sms,whatsapp}',
    'Hi {patient_first_name}, your appointment on {appointment_time} is confirmed. '
    || 'Details: {app_link}'
),
(
    'Appointment cancelled', 'reservation_cancelled', '{sms,whatsapp}',
    'Your appointment on {appointment_time} was cancelled. Book another time: {app_link}'
),
(
    'Appointment reminder, 24 hours', 'reservation_reminder_24h', '{sms,whatsapp}',
    'Reminder: you have an appointment on {appointment_time}. Details: {app_link}'
),
(
    'Appointment reminder, 2 hours', 'reservation_reminder_2h', '{sms,whatsapp}',
    'Reminder: your appointment is today at {appointment_time}. See you soon.'
),
(
    'Appointment request declined', 'reservation_rejected', '{sms,whatsapp}',
    'Your appointment request for {appointment_time} could not be accepted. '
    || 'Please choose another time: {app_link}'
),
(
    'Appointment hold ended', 'reservation_request_expired', '{sms,whatsapp}',
    'Your hold for {appointment_time} ended without a confirmation. Please book again: {app_link}'
);

-- System messages raise no "New message" (supabase/functions-sql/tickets_notifications.sql).
drop trigger if exists notify_chat_message on public.chat_messages;
create trigger notify_chat_message
after insert on public.chat_messages
-- System messages (status updates posted by the outbox) raise no "New message".
for each row when (new.kind <> 'system')
execute function private.notify_chat_message();
