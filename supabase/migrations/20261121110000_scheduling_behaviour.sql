-- Scheduling behaviour: capacity and status bookkeeping, slot generation, the booking RPCs,
-- RLS policies and grants, and Realtime for slots, requests and reservations. The functions,
-- triggers and policies below are copies of supabase/functions-sql/scheduling.sql and
-- supabase/policies/<table>.sql, which are their reviewed, current definitions.

-- Columns, constraints and indexes ------------------------------------------------------------

-- How many of a slot's taken places are holds of pending requests (status needs to know).
alter table public.time_slot
add column pending_requests integer not null default 0;
alter table public.time_slot
add constraint chk_time_slot_pending check (
    pending_requests between 0 and current_reservations
);

-- A rule may be for one service only (null: any service of the practitioner).
alter table public.availability_rule
add column service_id uuid references public.medical_service (id) on delete cascade;
create index idx_availability_service_id on public.availability_rule (service_id);

-- Why a reservation was cancelled (cancel_reservation's p_reason).
alter table public.reservation
add column cancellation_reason text;

-- One reservation per approved request; this unique index also covers the foreign key.
create unique index reservation_request_id_key on public.reservation (request_id);
drop index public.idx_reservation_request_id;

-- Nothing looks slots up by expires_at; without this index, holds taken and released keep
-- slot updates HOT.
drop index public.idx_time_slot_expires;

-- Every booking updates its slot row two or three times: leave room on each page so those
-- updates stay HOT (no new entries in the slot's six indexes, no exclusion re-check).
alter table public.time_slot set (fillfactor = 70);

-- A practitioner's calendar, in time order.
create index idx_time_slot_profile_start on public.time_slot (profile_id, start_time);
-- The slot expiry sweep reads only slots it has not expired yet.
create index idx_time_slot_unexpired_start on public.time_slot (start_time)
where status in ('available', 'pending_approval', 'reserved');

-- Functions and triggers (supabase/functions-sql/scheduling.sql) ---------------------------

-- Helpers ----------------------------------------------------------------------------------

-- True when the request comes through the API as anon or authenticated (PostgREST sets the role
-- per request), false for system sessions (service_role, the worker, a DBA). Reads the `role`
-- setting, which `set local role` changes and security definer functions do not. (The ticket
-- core's access helpers, supabase/functions-sql/tickets_access.sql, own its definition.)
create or replace function private.is_api_request()
returns boolean
language sql stable
set search_path = ''
as $fn$
    select coalesce(pg_catalog.current_setting('role', true), 'none') in ('anon', 'authenticated')
$fn$;

-- True when the signed-in user is a practitioner (someone who offers bookable services).
create or replace function private.is_practitioner()
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.profile as p
        where
            p.id = (select auth.uid())
            and p.role in ('doctor', 'specialist', 'counselor', 'diagnostics')
    )
$fn$;

-- The reservations the signed-in user is the patient of. Policies call it as
-- `= any (array(select private.current_patient_reservation_ids()))` so it runs once per statement.
create or replace function private.current_patient_reservation_ids()
returns setof uuid
language sql stable
security definer
set search_path = ''
as $fn$
    select r.id
    from public.reservation as r
    where r.patient_id = (select auth.uid())
$fn$;

-- True when the signed-in user is the practitioner of reservation p_reservation_id.
create or replace function private.is_reservation_practitioner(p_reservation_id uuid)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.reservation as r
        where r.id = p_reservation_id and r.profile_id = (select auth.uid())
    )
$fn$;

-- The status a slot has from its own columns: 'blocked' stays until the practitioner unblocks
-- it; otherwise a started slot is 'expired', a slot with a free place is 'available', a full
-- slot is 'pending_approval' while some of its places are holds, and 'reserved' once all are
-- confirmed.
create or replace function private.time_slot_status(
    p_status text,
    p_start_time timestamptz,
    p_current_reservations integer,
    p_max_reservations integer,
    p_pending_requests integer
)
returns text
language sql stable
set search_path = ''
as $fn$
    select case
        when p_status = 'blocked' then 'blocked'
        when p_start_time <= pg_catalog.now() then 'expired'
        when p_current_reservations < p_max_reservations then 'available'
        when p_pending_requests > 0 then 'pending_approval'
        else 'reserved'
    end
$fn$;

-- Takes one place in slot p_slot_id: a hold when p_hold_expires_at is given, a confirmed place
-- otherwise. Returns the updated slot.
-- Raises P0002 (no such slot), CH005 (blocked, started or expired), CH002 (full).
create or replace function private.claim_time_slot_place(
    p_slot_id uuid, p_hold_expires_at timestamptz
)
returns public.time_slot
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_slot public.time_slot;
begin
    -- One guarded UPDATE: the row lock serialises concurrent claims, and after waiting for it
    -- PostgreSQL re-checks the WHERE clause against the committed row, so a place counted as
    -- free here is free.
    update public.time_slot as s
    set
        current_reservations = s.current_reservations + 1,
        pending_requests = s.pending_requests + (p_hold_expires_at is not null)::integer,
        expires_at = case
            when p_hold_expires_at is null then s.expires_at
            else least(s.expires_at, p_hold_expires_at, s.start_time)
        end
    where
        s.id = p_slot_id
        and s.status not in ('blocked', 'expired')
        and s.start_time > pg_catalog.now()
        and s.current_reservations < s.max_reservations
    returning s.* into v_slot;
    if found then
        return v_slot;
    end if;

    select s.* into v_slot from public.time_slot as s where s.id = p_slot_id;
    if not found then
        raise exception 'time slot % does not exist', p_slot_id
            using errcode = 'P0002', hint = 'Pick a slot from the list of available slots.';
    elsif v_slot.status = 'blocked' then
        raise exception 'time slot % is blocked by the practitioner (CH005)', p_slot_id
            using errcode = 'CH005', hint = 'Choose another slot.';
    elsif v_slot.status = 'expired' or v_slot.start_time <= pg_catalog.now() then
        raise exception 'time slot % started at %; it can no longer be booked (CH005)',
            p_slot_id, v_slot.start_time
            using errcode = 'CH005', hint = 'Choose a slot in the future.';
    end if;
    raise exception 'time slot % is full (% of % places taken) (CH002)',
        p_slot_id, v_slot.current_reservations, v_slot.max_reservations
        using errcode = 'CH002', hint = 'Choose another slot.';
end
$fn$;

-- Gives back one place of slot p_slot_id (a hold when p_was_hold). Called after the request or
-- reservation row has changed, so the earliest remaining hold is read correctly.
create or replace function private.release_time_slot_place(p_slot_id uuid, p_was_hold boolean)
returns void
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    update public.time_slot as s
    set
        current_reservations = s.current_reservations - 1,
        pending_requests = s.pending_requests - p_was_hold::integer,
        expires_at = case
            when not p_was_hold then s.expires_at
            when s.pending_requests - 1 = 0 then null
            else (
                select min(r.expires_at)
                from public.reservation_request as r
                where r.slot_id = s.id and r.status = 'pending'
            )
        end
    where s.id = p_slot_id;
end
$fn$;

-- Triggers: time_slot ----------------------------------------------------------------------

-- Keeps a slot's status true (see private.time_slot_status); a new slot starts empty and must
-- use one of its practitioner's own services. Blocking is refused while places are taken, so a
-- blocked slot never hides bookings.
-- Raises 23514 (service of another practitioner), CH001 (blocking a slot with bookings).
create or replace function private.maintain_time_slot()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if tg_op = 'INSERT' then
        new.current_reservations := 0;
        new.pending_requests := 0;
        new.expires_at := null;
        if not exists (
            select from public.medical_service as m
            where m.id = new.service_id and m.profile_id = new.profile_id
        ) then
            raise exception 'service % is not a service of practitioner %',
                new.service_id, new.profile_id
                using errcode = '23514',
                hint = 'Create slots for one of the practitioner''s own services.';
        end if;
    elsif new.status = 'blocked' and old.status <> 'blocked' and old.current_reservations > 0
        then
        raise exception 'time slot % has % booking(s); it cannot be blocked (CH001)',
            old.id, old.current_reservations
            using errcode = 'CH001',
            hint = 'Reject the pending requests and cancel the reservations first.';
    end if;
    new.status := private.time_slot_status(
        new.status, new.start_time, new.current_reservations, new.max_reservations,
        new.pending_requests
    );
    return new;
end
$fn$;

-- Triggers: reservation_request ------------------------------------------------------------

-- A new request holds a place of its slot until it is decided or expires. It takes its
-- practitioner, service and requested time from the slot, and its hold never outlives the
-- slot's start. Raises CH001 (not pending), 22023 (slot of another practitioner or service),
-- and whatever private.claim_time_slot_place raises.
create or replace function private.hold_time_slot_place()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_slot public.time_slot;
begin
    if new.status <> 'pending' then
        raise exception 'a reservation request starts as pending, not % (CH001)', new.status
            using errcode = 'CH001',
            hint = 'Insert it as pending, then approve or reject it.';
    end if;
    new.expires_at := coalesce(new.expires_at, pg_catalog.now() + interval '30 minutes');
    v_slot := private.claim_time_slot_place(new.slot_id, new.expires_at);
    if new.profile_id is distinct from v_slot.profile_id and new.profile_id is not null
        or new.service_id is distinct from v_slot.service_id and new.service_id is not null then
        raise exception 'request names practitioner % and service %, but slot % is of % and %',
            new.profile_id, new.service_id, new.slot_id, v_slot.profile_id, v_slot.service_id
            using errcode = '22023', hint = 'Leave profile_id and service_id to the slot.';
    end if;
    new.profile_id := v_slot.profile_id;
    new.service_id := v_slot.service_id;
    new.requested_time := v_slot.start_time;
    new.expires_at := least(new.expires_at, v_slot.start_time);
    return new;
end
$fn$;

-- A request moves only from pending, to approved, rejected or expired, and can be approved
-- only while its hold lasts. Raises CH007 (slot, practitioner, service or patient changed; the
-- patient may only become null, when their account is deleted), CH006 (no longer pending, or
-- hold expired).
create or replace function private.enforce_reservation_request_transition()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    if new.slot_id is distinct from old.slot_id
        or new.profile_id is distinct from old.profile_id
        or new.service_id is distinct from old.service_id
        or new.patient_id is distinct from old.patient_id and new.patient_id is not null then
        raise exception 'the slot, practitioner, service and patient of request % cannot change '
            '(CH007)', old.id
            using errcode = 'CH007', hint = 'Request another slot instead.';
    end if;
    if new.status is not distinct from old.status then
        return new;
    end if;
    if old.status <> 'pending' then
        raise exception 'request % is already % (CH006)', old.id, old.status
            using errcode = 'CH006',
            hint = 'Only pending requests can be approved, rejected or expired.';
    end if;
    if new.status = 'approved' then
        -- clock_timestamp, not now(): the hold is judged when the row is locked, however long
        -- the approving transaction has been open.
        if old.expires_at <= pg_catalog.clock_timestamp() then
            raise exception 'the hold of request % expired at % (CH006)', old.id, old.expires_at
                using errcode = 'CH006', hint = 'Ask the patient to request a slot again.';
        end if;
        new.approved_at := coalesce(new.approved_at, pg_catalog.now());
    end if;
    return new;
end
$fn$;

-- A decided request gives back its hold; an approved one becomes a confirmed reservation in
-- the same statement (the slot row stays locked in between, so nobody takes the place).
create or replace function private.apply_reservation_request_decision()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.release_time_slot_place(old.slot_id, true);
    if new.status = 'approved' then
        insert into public.reservation (
            profile_id, slot_id, service_id, request_id, patient_id, patient_name,
            patient_phone, patient_email, source, price_at_booking
        )
        select
            new.profile_id,
            new.slot_id,
            new.service_id,
            new.id,
            new.patient_id,
            new.patient_name,
            new.patient_phone,
            new.patient_email,
            -- Patients with an account book on the web; the others come through WhatsApp.
            case when new.patient_id is null then 'whatsapp' else 'web' end,
            m.price
        from public.medical_service as m
        where m.id = new.service_id;
    end if;
    return null;
end
$fn$;

-- A pending request that is deleted gives back its hold.
create or replace function private.release_deleted_request_hold()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.release_time_slot_place(old.slot_id, true);
    return null;
end
$fn$;

-- Triggers: reservation --------------------------------------------------------------------

-- A new reservation is confirmed and takes a place of its slot; it takes its practitioner and
-- service from the slot. Raises CH001 (not confirmed), 22023 (slot of another practitioner or
-- service), and whatever private.claim_time_slot_place raises.
create or replace function private.claim_reservation_place()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_slot public.time_slot;
begin
    if new.status <> 'confirmed' then
        raise exception 'a reservation starts as confirmed, not % (CH001)', new.status
            using errcode = 'CH001', hint = 'Insert it as confirmed, then change its status.';
    end if;
    v_slot := private.claim_time_slot_place(new.slot_id, null);
    if new.profile_id is distinct from v_slot.profile_id and new.profile_id is not null
        or new.service_id is distinct from v_slot.service_id and new.service_id is not null then
        raise exception 'reservation names practitioner % and service %, but slot % is of % '
            'and %', new.profile_id, new.service_id, new.slot_id, v_slot.profile_id,
            v_slot.service_id
            using errcode = '22023', hint = 'Leave profile_id and service_id to the slot.';
    end if;
    new.profile_id := v_slot.profile_id;
    new.service_id := v_slot.service_id;
    new.no_show := false;
    return new;
end
$fn$;

-- A reservation moves only from confirmed, to cancelled, completed or no_show; the matching
-- timestamp and the no_show flag follow the status. Raises CH007 (slot, practitioner, service,
-- request or patient changed; request and patient may only become null, when the request or
-- the patient's account is deleted), CH001 (any other status change).
create or replace function private.enforce_reservation_transition()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    if new.slot_id is distinct from old.slot_id
        or new.profile_id is distinct from old.profile_id
        or new.service_id is distinct from old.service_id
        or new.request_id is distinct from old.request_id and new.request_id is not null
        or new.patient_id is distinct from old.patient_id and new.patient_id is not null then
        raise exception 'the slot, practitioner, service, request and patient of reservation % '
            'cannot change (CH007)', old.id
            using errcode = 'CH007', hint = 'Cancel it and book the other slot instead.';
    end if;
    if new.status is distinct from old.status then
        if old.status <> 'confirmed'
            or new.status not in ('cancelled', 'completed', 'no_show') then
            raise exception 'reservation % cannot go from % to % (CH001)',
                old.id, old.status, new.status
                using errcode = 'CH001',
                hint = 'Only a confirmed reservation changes: to cancelled, completed or no_show.';
        end if;
        if new.status = 'cancelled' then
            new.cancelled_at := coalesce(new.cancelled_at, pg_catalog.now());
        elsif new.status = 'completed' then
            new.completed_at := coalesce(new.completed_at, pg_catalog.now());
        end if;
    end if;
    new.no_show := new.status = 'no_show';
    return new;
end
$fn$;

-- A cancelled (or deleted, still counted) reservation gives back its place. A completed or
-- no-show reservation keeps it: the place was used.
create or replace function private.release_reservation_place()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.release_time_slot_place(old.slot_id, false);
    return null;
end
$fn$;

-- RPC: slot generation ---------------------------------------------------------------------

-- generate_time_slots(p_profile_id, p_service_id, p_from, p_to) returns integer
-- Materialises the slots of service p_service_id from practitioner p_profile_id's active
-- availability rules effective on each date from p_from to p_to (inclusive), in the
-- practitioner's time zone (profile.timezone): a 09:00-17:00 rule gives 09:00-17:00 local
-- slots on both sides of a daylight-saving change. Slots last slot_duration minutes, start
-- every slot_duration + buffer_time minutes and take max_appointments_per_slot people. Rules
-- with a service_id apply to that service only. Local times that do not exist (the hour
-- skipped when clocks go forward) get no slot; an ambiguous local time (clocks going back) is
-- read as standard time, as PostgreSQL does. Slots that would have started already are not
-- created.
-- Idempotent: a slot overlapping any existing slot of the practitioner (whatever its service
-- or status) is skipped, so a second run creates nothing; concurrent runs for one practitioner
-- take turns (advisory lock).
-- Returns how many slots were created. Security invoker: RLS decides what the caller may read
-- and insert. Limit: at most 93 days (a quarter) per call.
-- Raises 22023 (missing argument, reversed or too long range, service not the practitioner's
-- or inactive), P0002 (no such practitioner), CH008 (a user generating another's slots).
create or replace function public.generate_time_slots(
    p_profile_id uuid, p_service_id uuid, p_from date, p_to date
)
returns integer
language plpgsql
set search_path = ''
as $fn$
declare
    c_max_days constant integer := 93;
    v_timezone text;
    v_service_active boolean;
    v_created integer;
begin
    if p_profile_id is null or p_service_id is null or p_from is null or p_to is null then
        raise exception 'generate_time_slots needs a practitioner, a service and two dates'
            using errcode = '22023';
    elsif p_to < p_from then
        raise exception 'p_to (%) is before p_from (%)', p_to, p_from
            using errcode = '22023', hint = 'Swap the dates.';
    elsif p_to - p_from + 1 > c_max_days then
        raise exception 'cannot generate % days of slots at once; the limit is % days',
            p_to - p_from + 1, c_max_days
            using errcode = '22023', hint = 'Split the range into calls of at most 93 days.';
    end if;
    if private.is_api_request() and p_profile_id is distinct from (select auth.uid()) then
        raise exception 'you can only generate your own slots (CH008)'
            using errcode = 'CH008', hint = 'Pass your own profile id.';
    end if;

    select p.timezone into v_timezone from public.profile as p where p.id = p_profile_id;
    if not found then
        raise exception 'practitioner % does not exist', p_profile_id using errcode = 'P0002';
    end if;
    select m.is_active into v_service_active
    from public.medical_service as m
    where m.id = p_service_id and m.profile_id = p_profile_id;
    if v_service_active is null then
        raise exception 'service % is not a service of practitioner %', p_service_id,
            p_profile_id
            using errcode = '22023', hint = 'Use one of the practitioner''s own services.';
    elsif not v_service_active then
        raise exception 'service % is inactive', p_service_id
            using errcode = '22023', hint = 'Activate the service before generating slots.';
    end if;

    perform pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtextextended('carehub.generate_time_slots:' || p_profile_id::text, 0)
    );

    insert into public.time_slot (
        profile_id, service_id, start_time, end_time, max_reservations
    )
    select
        p_profile_id,
        p_service_id,
        local.start_at,
        local.start_at + pg_catalog.make_interval(mins => local.slot_duration),
        local.max_appointments_per_slot
    from (
        select
            r.slot_duration,
            r.max_appointments_per_slot,
            day.d + r.start_time
            + pg_catalog.make_interval(mins => k.n * (r.slot_duration + r.buffer_time))
            as local_start,
            (
                day.d + r.start_time
                + pg_catalog.make_interval(mins => k.n * (r.slot_duration + r.buffer_time))
            ) at time zone v_timezone as start_at
        from pg_catalog.generate_series(0, p_to - p_from) as offsets (n)
        cross join lateral (select p_from + offsets.n as d) as day
        inner join public.availability_rule as r
            on
                r.profile_id = p_profile_id
                and r.is_active
                and r.day_of_week = extract(dow from day.d)
                and r.effective_from <= day.d
                and (r.effective_to is null or r.effective_to >= day.d)
                and (r.service_id is null or r.service_id = p_service_id)
        cross join lateral pg_catalog.generate_series(
            0,
            (
                (extract(epoch from r.end_time - r.start_time)::integer / 60 - r.slot_duration)
                / (r.slot_duration + r.buffer_time)
            )
        ) as k (n)
        where extract(epoch from r.end_time - r.start_time) / 60 >= r.slot_duration
    ) as local
    where
        -- A local time inside the spring-forward gap does not come back unchanged: skip it.
        local.start_at at time zone v_timezone = local.local_start
        and local.start_at > pg_catalog.now()
    order by local.start_at
    on conflict do nothing;
    get diagnostics v_created = row_count;
    return v_created;
end
$fn$;

-- RPC: requests and reservations ---------------------------------------------------------

-- One optional text field of request_reservation's p_details: null when absent, else a string
-- of at most p_max_length characters. Raises 22023 otherwise.
create or replace function private.request_detail_text(
    p_details jsonb, p_key text, p_max_length integer
)
returns text
language plpgsql immutable
set search_path = ''
as $fn$
declare
    v_value text;
begin
    if not p_details ? p_key or pg_catalog.jsonb_typeof(p_details -> p_key) = 'null' then
        return null;
    elsif pg_catalog.jsonb_typeof(p_details -> p_key) <> 'string' then
        raise exception 'p_details.% must be a string', p_key using errcode = '22023';
    end if;
    v_value := pg_catalog.btrim(p_details ->> p_key);
    if pg_catalog.length(v_value) > p_max_length then
        raise exception 'p_details.% is longer than % characters', p_key, p_max_length
            using errcode = '22023', hint = 'Shorten it.';
    end if;
    return nullif(v_value, '');
end
$fn$;

-- request_reservation(p_slot_id, p_patient_name, p_patient_phone, p_details) returns jsonb
-- Asks for a place in slot p_slot_id. The place is held for 30 minutes (never past the slot's
-- start) while the practitioner decides; a practitioner who does not require approval
-- (profile.appointment_approval_required = false) gets the reservation confirmed at once.
-- p_details (a JSON object, every key optional): email, age (integer 0-150), gender,
-- chief_complaint, symptoms, medical_history, current_medications, allergies, urgency_level
-- ('low', 'normal', 'high', 'urgent'), preferred_contact_method ('whatsapp', 'phone',
-- 'email'); other keys are refused. A signed-in caller's patient_id is auth.uid(); anon
-- callers (WhatsApp and web patients without an account) book with name and phone only.
-- Returns {"request_id": uuid, "reservation_id": uuid or null, "status": "pending" |
-- "confirmed"}.
-- Raises 22023 (invalid input: name, phone in E.164, details), P0002 (no such slot), CH005
-- (slot blocked, started, expired, or its service withdrawn), CH002 (slot full).
-- SECURITY DEFINER and executable by anon ON PURPOSE: it is on the anon allow-list, because
-- patients without an account book through it. Hence every input is validated here, and it
-- writes only a pending request (or, in auto-confirm mode, its reservation) for that slot.
create or replace function public.request_reservation(
    p_slot_id uuid, p_patient_name text, p_patient_phone text, p_details jsonb default '{}'
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    c_text_max constant integer := 4000;
    v_details jsonb := coalesce(p_details, '{}');
    v_name text := pg_catalog.btrim(p_patient_name);
    -- Phones arrive as typed ("+34 600-111 222"); keep the digits and the leading plus.
    v_phone text := pg_catalog.regexp_replace(coalesce(p_patient_phone, ''), '[\s().-]', '', 'g');
    v_unknown text;
    v_email text;
    v_age integer;
    v_urgency text;
    v_contact text;
    v_approval_required boolean;
    v_service_active boolean;
    v_request_id uuid;
    v_reservation_id uuid;
begin
    if p_slot_id is null then
        raise exception 'p_slot_id is required' using errcode = '22023';
    elsif v_name is null or v_name = '' then
        raise exception 'the patient''s name is required' using errcode = '22023';
    elsif pg_catalog.length(v_name) > 255 or v_name ~ '[[:cntrl:]]' then
        raise exception 'the patient''s name must be one line of at most 255 characters'
            using errcode = '22023';
    elsif v_phone !~ '^\+[1-9][0-9]{6,14}$' then
        raise exception 'the patient''s phone % is not an international number', p_patient_phone
            using errcode = '22023', hint = 'Write it with its country code, e.g. +34600111222.';
    elsif pg_catalog.jsonb_typeof(v_details) <> 'object' then
        raise exception 'p_details must be a JSON object' using errcode = '22023';
    end if;

    select pg_catalog.string_agg(k.key, ', ' order by k.key) into v_unknown
    from pg_catalog.jsonb_object_keys(v_details) as k (key)
    where k.key <> all (array[
        'email', 'age', 'gender', 'chief_complaint', 'symptoms', 'medical_history',
        'current_medications', 'allergies', 'urgency_level', 'preferred_contact_method'
    ]);
    if v_unknown is not null then
        raise exception 'p_details has unknown field(s): %', v_unknown
            using errcode = '22023',
            hint = 'Known fields: email, age, gender, chief_complaint, symptoms, '
            || 'medical_history, current_medications, allergies, urgency_level, '
            || 'preferred_contact_method.';
    end if;
    v_email := private.request_detail_text(v_details, 'email', 255);
    if v_email !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' then
        raise exception 'p_details.email % is not an email address', v_email
            using errcode = '22023';
    end if;
    if v_details ? 'age' and pg_catalog.jsonb_typeof(v_details -> 'age') <> 'null' then
        if pg_catalog.jsonb_typeof(v_details -> 'age') <> 'number'
            or (v_details ->> 'age') !~ '^[0-9]{1,3}$'
            or (v_details ->> 'age')::integer > 150 then
            raise exception 'p_details.age must be a whole number from 0 to 150'
                using errcode = '22023';
        end if;
        v_age := (v_details ->> 'age')::integer;
    end if;
    v_urgency := coalesce(private.request_detail_text(v_details, 'urgency_level', 20), 'normal');
    if v_urgency not in ('low', 'normal', 'high', 'urgent') then
        raise exception 'p_details.urgency_level must be low, normal, high or urgent, not %',
            v_urgency
            using errcode = '22023';
    end if;
    v_contact := coalesce(
        private.request_detail_text(v_details, 'preferred_contact_method', 20), 'whatsapp'
    );
    if v_contact not in ('whatsapp', 'phone', 'email') then
        raise exception 'p_details.preferred_contact_method must be whatsapp, phone or email, '
            'not %', v_contact
            using errcode = '22023';
    end if;

    select p.appointment_approval_required, m.is_active
    into v_approval_required, v_service_active
    from public.time_slot as s
    inner join public.profile as p on s.profile_id = p.id
    inner join public.medical_service as m on s.service_id = m.id
    where s.id = p_slot_id;
    if not found then
        raise exception 'time slot % does not exist', p_slot_id
            using errcode = 'P0002', hint = 'Pick a slot from the list of available slots.';
    elsif not v_service_active then
        raise exception 'the service of time slot % is no longer offered (CH005)', p_slot_id
            using errcode = 'CH005', hint = 'Choose a slot of another service.';
    end if;

    -- The insert trigger takes the hold (or raises CH002 / CH005).
    insert into public.reservation_request (
        slot_id, patient_id, patient_name, patient_phone, patient_email, patient_age,
        patient_gender, chief_complaint, symptoms, medical_history, current_medications,
        allergies, urgency_level, preferred_contact_method, requested_time
    )
    values (
        p_slot_id,
        case when pg_catalog.current_setting('role', true) = 'authenticated'
                then (select auth.uid())
        end,
        v_name,
        v_phone,
        v_email,
        v_age,
        private.request_detail_text(v_details, 'gender', 20),
        private.request_detail_text(v_details, 'chief_complaint', c_text_max),
        private.request_detail_text(v_details, 'symptoms', c_text_max),
        private.request_detail_text(v_details, 'medical_history', c_text_max),
        private.request_detail_text(v_details, 'current_medications', c_text_max),
        private.request_detail_text(v_details, 'allergies', c_text_max),
        v_urgency,
        v_contact,
        pg_catalog.now()  -- replaced by the slot's start time in the trigger
    )
    returning id into v_request_id;

    if not v_approval_required then
        -- The decision trigger turns the hold into a confirmed reservation.
        update public.reservation_request set status = 'approved'
        where id = v_request_id;
        select r.id into v_reservation_id
        from public.reservation as r
        where r.request_id = v_request_id;
    end if;

    return pg_catalog.jsonb_build_object(
        'request_id', v_request_id,
        'reservation_id', v_reservation_id,
        'status', case when v_reservation_id is null then 'pending' else 'confirmed' end
    );
end
$fn$;

-- approve_reservation_request(p_request_id) returns reservation
-- The practitioner (or the system) confirms a pending request whose hold has not expired; the
-- hold becomes a confirmed reservation, which is returned.
-- Raises P0002 (no such request), CH008 (not the request's practitioner), CH006 (already
-- decided, or its hold expired).
create or replace function public.approve_reservation_request(p_request_id uuid)
returns public.reservation
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_request public.reservation_request;
    v_reservation public.reservation;
begin
    select r.* into v_request
    from public.reservation_request as r
    where r.id = p_request_id
    for update;
    if not found then
        raise exception 'reservation request % does not exist', p_request_id
            using errcode = 'P0002';
    elsif private.is_api_request() and v_request.profile_id is distinct from (select auth.uid())
        then
        raise exception 'only the practitioner of request % can approve it (CH008)',
            p_request_id
            using errcode = 'CH008';
    elsif v_request.status <> 'pending' then
        raise exception 'request % is already % (CH006)', p_request_id, v_request.status
            using errcode = 'CH006', hint = 'Only pending requests can be approved.';
    end if;
    update public.reservation_request
    set status = 'approved', approved_by = (select auth.uid())
    where id = p_request_id;
    select r.* into v_reservation
    from public.reservation as r
    where r.request_id = p_request_id;
    return v_reservation;
end
$fn$;

-- reject_reservation_request(p_request_id, p_reason) returns reservation_request
-- The practitioner (or the system) declines a pending request; its hold is released.
-- Raises P0002 (no such request), CH008 (not the request's practitioner), CH006 (already
-- decided).
create or replace function public.reject_reservation_request(
    p_request_id uuid, p_reason text default null
)
returns public.reservation_request
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_request public.reservation_request;
begin
    select r.* into v_request
    from public.reservation_request as r
    where r.id = p_request_id
    for update;
    if not found then
        raise exception 'reservation request % does not exist', p_request_id
            using errcode = 'P0002';
    elsif private.is_api_request() and v_request.profile_id is distinct from (select auth.uid())
        then
        raise exception 'only the practitioner of request % can reject it (CH008)',
            p_request_id
            using errcode = 'CH008';
    elsif v_request.status <> 'pending' then
        raise exception 'request % is already % (CH006)', p_request_id, v_request.status
            using errcode = 'CH006', hint = 'Only pending requests can be rejected.';
    end if;
    update public.reservation_request as r
    set status = 'rejected', rejection_reason = nullif(pg_catalog.btrim(p_reason), '')
    where r.id = p_request_id
    returning r.* into v_request;
    return v_request;
end
$fn$;

-- cancel_reservation(p_reservation_id, p_reason) returns reservation
-- The practitioner, the reservation's patient or the system cancels a confirmed reservation;
-- its place is released.
-- Raises P0002 (no such reservation), CH008 (neither its practitioner nor its patient), CH001
-- (not confirmed).
create or replace function public.cancel_reservation(
    p_reservation_id uuid, p_reason text default null
)
returns public.reservation
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_reservation public.reservation;
begin
    select r.* into v_reservation
    from public.reservation as r
    where r.id = p_reservation_id
    for update;
    if not found then
        raise exception 'reservation % does not exist', p_reservation_id
            using errcode = 'P0002';
    elsif private.is_api_request()
        and (select auth.uid()) is distinct from v_reservation.profile_id
        and (select auth.uid()) is distinct from v_reservation.patient_id then
        raise exception 'only the practitioner or the patient of reservation % can cancel it '
            '(CH008)', p_reservation_id
            using errcode = 'CH008';
    elsif v_reservation.status <> 'confirmed' then
        raise exception 'reservation % is %; only a confirmed reservation can be cancelled '
            '(CH001)', p_reservation_id, v_reservation.status
            using errcode = 'CH001';
    end if;
    update public.reservation as r
    set status = 'cancelled', cancellation_reason = nullif(pg_catalog.btrim(p_reason), '')
    where r.id = p_reservation_id
    returning r.* into v_reservation;
    return v_reservation;
end
$fn$;

-- block_time_slot(p_slot_id) returns time_slot
-- The practitioner (or the system) takes a slot out of booking; it keeps its time, so nothing
-- else can be generated over it. Blocking a blocked slot changes nothing.
-- Raises P0002 (no such slot), CH008 (not the slot's practitioner), CH001 (the slot has
-- bookings: reject or cancel them first).
create or replace function public.block_time_slot(p_slot_id uuid)
returns public.time_slot
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_slot public.time_slot;
begin
    select s.* into v_slot from public.time_slot as s where s.id = p_slot_id for update;
    if not found then
        raise exception 'time slot % does not exist', p_slot_id using errcode = 'P0002';
    elsif private.is_api_request() and v_slot.profile_id is distinct from (select auth.uid()) then
        raise exception 'only the practitioner of time slot % can block it (CH008)', p_slot_id
            using errcode = 'CH008';
    end if;
    update public.time_slot as s set status = 'blocked'
    where s.id = p_slot_id
    returning s.* into v_slot;
    return v_slot;
end
$fn$;

-- unblock_time_slot(p_slot_id) returns time_slot
-- The practitioner (or the system) returns a blocked slot to booking; its status becomes what
-- its time and places say (available, or expired once started).
-- Raises P0002 (no such slot), CH008 (not the slot's practitioner).
create or replace function public.unblock_time_slot(p_slot_id uuid)
returns public.time_slot
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_slot public.time_slot;
begin
    select s.* into v_slot from public.time_slot as s where s.id = p_slot_id for update;
    if not found then
        raise exception 'time slot % does not exist', p_slot_id using errcode = 'P0002';
    elsif private.is_api_request() and v_slot.profile_id is distinct from (select auth.uid()) then
        raise exception 'only the practitioner of time slot % can unblock it (CH008)', p_slot_id
            using errcode = 'CH008';
    end if;
    update public.time_slot as s set status = 'available'
    where s.id = p_slot_id
    returning s.* into v_slot;
    return v_slot;
end
$fn$;

-- Sweeps (the worker) ----------------------------------------------------------------------

-- expire_reservation_requests() returns integer
-- Expires every pending request whose hold has run out, releasing its place; returns how many.
-- Requests another transaction holds locked (being approved or rejected right now) are
-- skipped and picked up by the next run, so the sweep never waits on a practitioner and one
-- outcome wins. Called every minute by the worker.
create or replace function public.expire_reservation_requests()
returns integer
language plpgsql
set search_path = ''
as $fn$
declare
    v_expired integer;
begin
    with due as (
        select r.id
        from public.reservation_request as r
        where r.status = 'pending' and r.expires_at <= pg_catalog.now()
        order by r.slot_id
        for update skip locked
    )

    update public.reservation_request as r
    set status = 'expired'
    from due
    where r.id = due.id;
    get diagnostics v_expired = row_count;
    return v_expired;
end
$fn$;

-- expire_time_slots() returns integer
-- Marks every started slot that is not blocked as expired; returns how many. Booking already
-- refuses started slots (CH005); this keeps the status column true for readers. Called every
-- minute by the worker.
create or replace function public.expire_time_slots()
returns integer
language plpgsql
set search_path = ''
as $fn$
declare
    v_expired integer;
begin
    update public.time_slot as s
    set status = 'expired'
    where
        s.status in ('available', 'pending_approval', 'reserved')
        and s.start_time <= pg_catalog.now();
    get diagnostics v_expired = row_count;
    return v_expired;
end
$fn$;

-- Privileges -------------------------------------------------------------------------------

revoke execute on function private.is_api_request() from public;
revoke execute on function private.is_practitioner() from public;
revoke execute on function private.current_patient_reservation_ids() from public;
revoke execute on function private.is_reservation_practitioner(uuid) from public;
revoke execute on function private.time_slot_status(text, timestamptz, integer, integer, integer)
from public;
revoke execute on function private.claim_time_slot_place(uuid, timestamptz) from public;
revoke execute on function private.release_time_slot_place(uuid, boolean) from public;
revoke execute on function private.maintain_time_slot() from public;
revoke execute on function private.hold_time_slot_place() from public;
revoke execute on function private.enforce_reservation_request_transition() from public;
revoke execute on function private.apply_reservation_request_decision() from public;
revoke execute on function private.release_deleted_request_hold() from public;
revoke execute on function private.claim_reservation_place() from public;
revoke execute on function private.enforce_reservation_transition() from public;
revoke execute on function private.release_reservation_place() from public;
revoke execute on function private.request_detail_text(jsonb, text, integer) from public;
grant execute on function private.is_api_request() to authenticated, service_role;
grant execute on function private.is_practitioner() to authenticated, service_role;
grant execute on function private.current_patient_reservation_ids()
to authenticated, service_role;
grant execute on function private.is_reservation_practitioner(uuid)
to authenticated, service_role;

revoke execute on function public.generate_time_slots(uuid, uuid, date, date) from public;
revoke execute on function public.request_reservation(uuid, text, text, jsonb) from public;
revoke execute on function public.approve_reservation_request(uuid) from public;
revoke execute on function public.reject_reservation_request(uuid, text) from public;
revoke execute on function public.cancel_reservation(uuid, text) from public;
revoke execute on function public.block_time_slot(uuid) from public;
revoke execute on function public.unblock_time_slot(uuid) from public;
revoke execute on function public.expire_reservation_requests() from public;
revoke execute on function public.expire_time_slots() from public;
revoke execute on function public.generate_time_slots(uuid, uuid, date, date) from anon;
revoke execute on function public.approve_reservation_request(uuid) from anon;
revoke execute on function public.reject_reservation_request(uuid, text) from anon;
revoke execute on function public.cancel_reservation(uuid, text) from anon;
revoke execute on function public.block_time_slot(uuid) from anon;
revoke execute on function public.unblock_time_slot(uuid) from anon;
revoke execute on function public.expire_reservation_requests() from anon, authenticated;
revoke execute on function public.expire_time_slots() from anon, authenticated;
-- request_reservation is on the anon allow-list: patients without an account book through it.
grant execute on function public.request_reservation(uuid, text, text, jsonb)
to anon, authenticated, service_role;
grant execute on function public.generate_time_slots(uuid, uuid, date, date)
to authenticated, service_role;
grant execute on function public.approve_reservation_request(uuid) to authenticated, service_role;
grant execute on function public.reject_reservation_request(uuid, text)
to authenticated, service_role;
grant execute on function public.cancel_reservation(uuid, text) to authenticated, service_role;
grant execute on function public.block_time_slot(uuid) to authenticated, service_role;
grant execute on function public.unblock_time_slot(uuid) to authenticated, service_role;
grant execute on function public.expire_reservation_requests() to service_role;
grant execute on function public.expire_time_slots() to service_role;

-- Triggers ---------------------------------------------------------------------------------

drop trigger if exists maintain_time_slot on public.time_slot;
create trigger maintain_time_slot
before insert or update on public.time_slot
for each row execute function private.maintain_time_slot();

drop trigger if exists hold_time_slot_place on public.reservation_request;
create trigger hold_time_slot_place
before insert on public.reservation_request
for each row execute function private.hold_time_slot_place();

drop trigger if exists enforce_reservation_request_transition on public.reservation_request;
create trigger enforce_reservation_request_transition
before update on public.reservation_request
for each row execute function private.enforce_reservation_request_transition();

drop trigger if exists apply_reservation_request_decision on public.reservation_request;
create trigger apply_reservation_request_decision
after update of status on public.reservation_request
for each row
when (old.status = 'pending' and new.status <> 'pending')
execute function private.apply_reservation_request_decision();

drop trigger if exists release_deleted_request_hold on public.reservation_request;
create trigger release_deleted_request_hold
after delete on public.reservation_request
for each row when (old.status = 'pending')
execute function private.release_deleted_request_hold();

drop trigger if exists claim_reservation_place on public.reservation;
create trigger claim_reservation_place
before insert on public.reservation
for each row execute function private.claim_reservation_place();

drop trigger if exists enforce_reservation_transition on public.reservation;
create trigger enforce_reservation_transition
before update on public.reservation
for each row execute function private.enforce_reservation_transition();

drop trigger if exists release_cancelled_reservation_place on public.reservation;
create trigger release_cancelled_reservation_place
after update of status on public.reservation
for each row
when (old.status <> 'cancelled' and new.status = 'cancelled')
execute function private.release_reservation_place();

drop trigger if exists release_deleted_reservation_place on public.reservation;
create trigger release_deleted_reservation_place
after delete on public.reservation
for each row when (old.status <> 'cancelled')
execute function private.release_reservation_place();

drop trigger if exists set_updated_at on public.medical_service;
create trigger set_updated_at
before update on public.medical_service
for each row execute function private.set_updated_at();

drop trigger if exists set_updated_at on public.availability_rule;
create trigger set_updated_at
before update on public.availability_rule
for each row execute function private.set_updated_at();

drop trigger if exists set_updated_at on public.reservation_request;
create trigger set_updated_at
before update on public.reservation_request
for each row execute function private.set_updated_at();

drop trigger if exists set_updated_at on public.reservation;
create trigger set_updated_at
before update on public.reservation
for each row execute function private.set_updated_at();

drop trigger if exists set_updated_at on public.appointment_note;
create trigger set_updated_at
before update on public.appointment_note
for each row execute function private.set_updated_at();

-- Row level security and grants: medical_service (supabase/policies/medical_service.sql)

alter table public.medical_service enable row level security;

revoke all on public.medical_service from anon, authenticated, service_role;
grant select on public.medical_service to anon;
grant select on public.medical_service to authenticated;
grant insert (
    profile_id, name, description, duration, price, category, requirements, is_active
) on public.medical_service to authenticated;
grant update (
    name, description, duration, price, category, requirements, is_active
) on public.medical_service to authenticated;
grant all on public.medical_service to service_role;

drop policy if exists "Anyone can read active services" on public.medical_service;
create policy "Anyone can read active services"
on public.medical_service for select to anon, authenticated
using (is_active);

drop policy if exists "Practitioners and admins can read their services"
on public.medical_service;
create policy "Practitioners and admins can read their services"
on public.medical_service for select to authenticated
using (profile_id = (select auth.uid()) or (select private.is_admin()));

drop policy if exists "Practitioners can add their own services" on public.medical_service;
create policy "Practitioners can add their own services"
on public.medical_service for insert to authenticated
with check (profile_id = (select auth.uid()) and (select private.is_practitioner()));

drop policy if exists "Practitioners can update their own services" on public.medical_service;
create policy "Practitioners can update their own services"
on public.medical_service for update to authenticated
using (profile_id = (select auth.uid()))
with check (profile_id = (select auth.uid()));

-- Row level security and grants: availability_rule (supabase/policies/availability_rule.sql)

alter table public.availability_rule enable row level security;

revoke all on public.availability_rule from anon, authenticated, service_role;
grant select, delete on public.availability_rule to authenticated;
grant insert (
    profile_id, service_id, day_of_week, start_time, end_time, slot_duration, buffer_time,
    max_appointments_per_slot, is_active, effective_from, effective_to
) on public.availability_rule to authenticated;
grant update (
    service_id, day_of_week, start_time, end_time, slot_duration, buffer_time,
    max_appointments_per_slot, is_active, effective_from, effective_to
) on public.availability_rule to authenticated;
grant all on public.availability_rule to service_role;

drop policy if exists "Practitioners and admins can read availability rules"
on public.availability_rule;
create policy "Practitioners and admins can read availability rules"
on public.availability_rule for select to authenticated
using (profile_id = (select auth.uid()) or (select private.is_admin()));

drop policy if exists "Practitioners can add their own availability rules"
on public.availability_rule;
create policy "Practitioners can add their own availability rules"
on public.availability_rule for insert to authenticated
with check (profile_id = (select auth.uid()) and (select private.is_practitioner()));

drop policy if exists "Practitioners can update their own availability rules"
on public.availability_rule;
create policy "Practitioners can update their own availability rules"
on public.availability_rule for update to authenticated
using (profile_id = (select auth.uid()))
with check (profile_id = (select auth.uid()));

drop policy if exists "Practitioners can delete their own availability rules"
on public.availability_rule;
create policy "Practitioners can delete their own availability rules"
on public.availability_rule for delete to authenticated
using (profile_id = (select auth.uid()));

-- Row level security and grants: time_slot (supabase/policies/time_slot.sql)

alter table public.time_slot enable row level security;

revoke all on public.time_slot from anon, authenticated, service_role;
grant select on public.time_slot to anon;
grant select on public.time_slot to authenticated;
grant insert (
    profile_id, service_id, start_time, end_time, max_reservations
) on public.time_slot to authenticated;
grant update (max_reservations) on public.time_slot to authenticated;
grant all on public.time_slot to service_role;

drop policy if exists "Anyone can read bookable future slots" on public.time_slot;
create policy "Anyone can read bookable future slots"
on public.time_slot for select to anon, authenticated
using (status = 'available' and start_time > now());

drop policy if exists "Practitioners and admins can read their slots" on public.time_slot;
create policy "Practitioners and admins can read their slots"
on public.time_slot for select to authenticated
using (profile_id = (select auth.uid()) or (select private.is_admin()));

drop policy if exists "Practitioners can add their own slots" on public.time_slot;
create policy "Practitioners can add their own slots"
on public.time_slot for insert to authenticated
with check (profile_id = (select auth.uid()) and (select private.is_practitioner()));

drop policy if exists "Practitioners can update their own slots" on public.time_slot;
create policy "Practitioners can update their own slots"
on public.time_slot for update to authenticated
using (profile_id = (select auth.uid()))
with check (profile_id = (select auth.uid()));

-- Row level security and grants: reservation_request (supabase/policies/reservation_request.sql)

alter table public.reservation_request enable row level security;

revoke all on public.reservation_request from anon, authenticated, service_role;
grant select on public.reservation_request to authenticated;
grant all on public.reservation_request to service_role;

drop policy if exists "Practitioners and patients can read their requests"
on public.reservation_request;
create policy "Practitioners and patients can read their requests"
on public.reservation_request for select to authenticated
using (profile_id = (select auth.uid()) or patient_id = (select auth.uid()));

-- Row level security and grants: reservation (supabase/policies/reservation.sql)

alter table public.reservation enable row level security;

revoke all on public.reservation from anon, authenticated, service_role;
grant select on public.reservation to authenticated;
grant update (status, notes, payment_status) on public.reservation to authenticated;
grant all on public.reservation to service_role;

drop policy if exists "Practitioners and patients can read their reservations"
on public.reservation;
create policy "Practitioners and patients can read their reservations"
on public.reservation for select to authenticated
using (profile_id = (select auth.uid()) or patient_id = (select auth.uid()));

drop policy if exists "Practitioners can update their reservations" on public.reservation;
create policy "Practitioners can update their reservations"
on public.reservation for update to authenticated
using (profile_id = (select auth.uid()))
with check (profile_id = (select auth.uid()));

-- Row level security and grants: appointment_note (supabase/policies/appointment_note.sql)

alter table public.appointment_note enable row level security;

revoke all on public.appointment_note from anon, authenticated, service_role;
grant select, delete on public.appointment_note to authenticated;
grant insert (
    reservation_id, profile_id, note_type, content, is_private
) on public.appointment_note to authenticated;
grant update (note_type, content, is_private) on public.appointment_note to authenticated;
grant all on public.appointment_note to service_role;

drop policy if exists "Authors can read their notes" on public.appointment_note;
create policy "Authors can read their notes"
on public.appointment_note for select to authenticated
using (profile_id = (select auth.uid()));

drop policy if exists "Patients can read the shared notes of their reservations"
on public.appointment_note;
create policy "Patients can read the shared notes of their reservations"
on public.appointment_note for select to authenticated
using (
    not is_private
    and reservation_id = any(array(select private.current_patient_reservation_ids()))
);

drop policy if exists "Practitioners can write notes on their reservations"
on public.appointment_note;
create policy "Practitioners can write notes on their reservations"
on public.appointment_note for insert to authenticated
with check (
    profile_id = (select auth.uid())
    and private.is_reservation_practitioner(reservation_id)
);

drop policy if exists "Authors can update their notes" on public.appointment_note;
create policy "Authors can update their notes"
on public.appointment_note for update to authenticated
using (profile_id = (select auth.uid()))
with check (profile_id = (select auth.uid()));

drop policy if exists "Authors can delete their notes" on public.appointment_note;
create policy "Authors can delete their notes"
on public.appointment_note for delete to authenticated
using (profile_id = (select auth.uid()));

-- Realtime ---------------------------------------------------------------------------------

alter publication supabase_realtime
add table public.time_slot, public.reservation_request, public.reservation;
