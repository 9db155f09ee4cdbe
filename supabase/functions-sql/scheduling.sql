-- Scheduling: slot generation, capacity and status bookkeeping (triggers), and the RPCs that
-- frontends, the WhatsApp service and the worker call to request, decide and cancel bookings.
--
-- Capacity model. A slot's current_reservations counts the places taken: pending requests
-- (holds) plus reservations that are not cancelled; pending_requests counts the holds among
-- them. Every change goes through one guarded UPDATE of the slot row (private.claim_time_slot_
-- place / private.release_time_slot_place), so the slot row lock serialises concurrent bookings
-- and the check constraint 0 <= current_reservations <= max_reservations is never reached.
-- Lock order everywhere: the request or reservation row first, then its slot row.

-- Helpers ----------------------------------------------------------------------------------

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
-- use one of its practitioner's own services. Blocking is refused while holds are pending (a
-- blocked slot never leaves a patient waiting: block_time_slot rejects them first); confirmed
-- reservations stay, counted in current_reservations.
-- Raises 23514 (service of another practitioner), CH001 (blocking a slot with pending holds).
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
    elsif new.status = 'blocked' and old.status <> 'blocked' and old.pending_requests > 0 then
        raise exception 'time slot % has % pending request(s); it cannot be blocked (CH001)',
            old.id, old.pending_requests
            using errcode = 'CH001',
            hint = 'Call block_time_slot, which rejects the pending requests first.';
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

-- The address of the client of this API request: x-real-ip when the gateway sets it, else the
-- first address of x-forwarded-for (PostgREST passes the request headers as JSON in the setting
-- request.headers). Null without request headers (the service, psql, the worker). An address
-- that is not an IP address is kept as written (lower case), so it is still capped.
create or replace function private.request_client_address()
returns text
language plpgsql stable
set search_path = ''
as $fn$
declare
    v_headers jsonb := nullif(pg_catalog.current_setting('request.headers', true), '')::jsonb;
    v_address text;
begin
    if v_headers is null or pg_catalog.jsonb_typeof(v_headers) <> 'object' then
        return null;
    end if;
    v_address := coalesce(
        nullif(pg_catalog.btrim(v_headers ->> 'x-real-ip'), ''),
        nullif(pg_catalog.btrim(pg_catalog.split_part(v_headers ->> 'x-forwarded-for', ',', 1)), '')
    );
    if v_address is null then
        return null;
    end if;
    begin
        return pg_catalog.host(v_address::inet);
    exception when invalid_text_representation then
        return pg_catalog.lower(pg_catalog.left(v_address, 100));
    end;
end
$fn$;

-- Refuses an anonymous request past the booking caps of private.limits, counting the pending,
-- unexpired anonymous holds (private.anonymous_booking_holds) of phone p_phone (on slot
-- p_slot_id, with practitioner p_profile_id) and of client address p_address (when known).
-- Called by private.request_reservation (security definer), which then records the new hold.
-- Raises CH009 naming the cap that was reached.
create or replace function private.enforce_anonymous_booking_caps(
    p_slot_id uuid, p_profile_id uuid, p_phone text, p_address text
)
returns void
language plpgsql
set search_path = ''
as $fn$
declare
    v_on_slot integer;
    v_with_practitioner integer;
    v_from_address integer;
    v_cap integer;
begin
    -- Requests of one phone (then one address) take turns, so two at once cannot both pass a
    -- count. Always phone before address, and both before the slot row: no lock cycle.
    perform pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtextextended('carehub.booking_phone:' || p_phone, 0)
    );
    if p_address is not null then
        perform pg_catalog.pg_advisory_xact_lock(
            pg_catalog.hashtextextended('carehub.booking_address:' || p_address, 0)
        );
    end if;

    select
        (count(*) filter (where r.slot_id = p_slot_id))::integer,
        (count(*) filter (where r.profile_id = p_profile_id))::integer
    into v_on_slot, v_with_practitioner
    from private.anonymous_booking_holds as h
    inner join public.reservation_request as r on h.request_id = r.id
    where
        h.phone = p_phone
        and r.status = 'pending'
        and r.expires_at > pg_catalog.now();
    v_cap := private.limit_value('booking_phone_holds_per_slot');
    if v_on_slot >= v_cap then
        raise exception 'phone number % has reached the limit of % pending request(s) for '
            'one time slot (booking_phone_holds_per_slot) (CH009)', p_phone, v_cap
            using errcode = 'CH009',
            hint = 'Wait for the practitioner to answer, or sign in to book.';
    end if;
    v_cap := private.limit_value('booking_phone_holds_per_practitioner');
    if v_with_practitioner >= v_cap then
        raise exception 'phone number % has reached the limit of % pending request(s) with '
            'one practitioner (booking_phone_holds_per_practitioner) (CH009)', p_phone, v_cap
            using errcode = 'CH009',
            hint = 'Wait for the practitioner to answer, or sign in to book.';
    end if;
    if p_address is not null then
        select count(*)::integer into v_from_address
        from private.anonymous_booking_holds as h
        inner join public.reservation_request as r on h.request_id = r.id
        where
            h.client_address = p_address
            and r.status = 'pending'
            and r.expires_at > pg_catalog.now();
        v_cap := private.limit_value('booking_address_holds_total');
        if v_from_address >= v_cap then
            raise exception 'your network address has reached the limit of % pending '
                'request(s) (booking_address_holds_total) (CH009)', v_cap
                using errcode = 'CH009',
                hint = 'Wait for the practitioners to answer, or sign in to book.';
        end if;
    end if;
end
$fn$;

-- request_reservation(p_slot_id, p_patient_name, p_patient_phone, p_details) returns jsonb
-- Asks for a place in slot p_slot_id. The place is held for 30 minutes (never past the slot's
-- start) while the practitioner decides; a practitioner who does not require approval
-- (profile.appointment_approval_required = false) gets the reservation confirmed at once,
-- except for anonymous callers (role anon): their requests always wait for the practitioner,
-- and they are capped (private.limits): pending holds per phone number per slot and per
-- practitioner, and per client address in total (see private.enforce_anonymous_booking_caps).
-- Calls without an API role (the service, the WhatsApp bot as service_role, psql) are not
-- capped.
-- p_details (a JSON object, every key optional): email, age (integer 0-150), gender,
-- chief_complaint, symptoms, medical_history, current_medications, allergies, urgency_level
-- ('low', 'normal', 'high', 'urgent'), preferred_contact_method ('whatsapp', 'phone',
-- 'email'); other keys are refused. A signed-in caller's patient_id is auth.uid(); anon
-- callers (WhatsApp and web patients without an account) book with name and phone only.
-- Returns {"request_id": uuid, "reservation_id": uuid or null, "status": "pending" |
-- "confirmed"}.
-- Raises 22023 (invalid input: name, phone in E.164, details), P0002 (no such slot), CH005
-- (slot blocked, started, expired, or its service withdrawn), CH002 (slot full), CH009
-- (anonymous booking cap reached; the message names it).
-- Executable by anon ON PURPOSE (through public.request_reservation): patients without an
-- account book through it. Hence every input is validated here, and it writes only a pending
-- request (or, for a signed-in patient in auto-confirm mode, its reservation) for that slot.
create or replace function private.request_reservation(
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
    v_anonymous boolean := pg_catalog.current_setting('role', true) = 'anon';
    v_address text;
    v_profile_id uuid;
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

    select s.profile_id, p.appointment_approval_required, m.is_active
    into v_profile_id, v_approval_required, v_service_active
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
    if v_anonymous then
        v_address := private.request_client_address();
        perform private.enforce_anonymous_booking_caps(
            p_slot_id, v_profile_id, v_phone, v_address
        );
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

    if v_anonymous then
        insert into private.anonymous_booking_holds (request_id, phone, client_address)
        values (v_request_id, v_phone, v_address);
    elsif not v_approval_required then
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
-- Raises CH008 (not the request's practitioner, or, to an API caller, no such request: the
-- same answer, so it tells nobody which requests exist), P0002 (no such request, to the
-- system), CH006 (already decided, or its hold expired).
create or replace function private.approve_reservation_request(p_request_id uuid)
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
    if not found and not private.is_api_request() then
        raise exception 'reservation request % does not exist', p_request_id
            using errcode = 'P0002';
    elsif v_request.id is null or (
        private.is_api_request() and v_request.profile_id is distinct from (select auth.uid())
    ) then
        raise exception 'reservation request % is not one you can approve (CH008)',
            p_request_id
            using errcode = 'CH008',
            hint = 'Only the practitioner of the request''s slot approves it; check the id.';
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
-- Raises CH008 (not the request's practitioner, or, to an API caller, no such request),
-- P0002 (no such request, to the system), CH006 (already decided).
create or replace function private.reject_reservation_request(
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
    if not found and not private.is_api_request() then
        raise exception 'reservation request % does not exist', p_request_id
            using errcode = 'P0002';
    elsif v_request.id is null or (
        private.is_api_request() and v_request.profile_id is distinct from (select auth.uid())
    ) then
        raise exception 'reservation request % is not one you can reject (CH008)',
            p_request_id
            using errcode = 'CH008',
            hint = 'Only the practitioner of the request''s slot rejects it; check the id.';
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
-- Raises CH008 (neither its practitioner nor its patient, or, to an API caller, no such
-- reservation), P0002 (no such reservation, to the system), CH001 (not confirmed).
create or replace function private.cancel_reservation(
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
    if not found and not private.is_api_request() then
        raise exception 'reservation % does not exist', p_reservation_id
            using errcode = 'P0002';
    elsif v_reservation.id is null or (
        private.is_api_request()
        and (select auth.uid()) is distinct from v_reservation.profile_id
        and (select auth.uid()) is distinct from v_reservation.patient_id
    ) then
        raise exception 'reservation % is not one you can cancel (CH008)', p_reservation_id
            using errcode = 'CH008',
            hint = 'Only the reservation''s practitioner or patient cancels it; check the id.';
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
-- else can be generated over it. Its pending requests are rejected (their patients with an
-- account get a notification); its confirmed reservations are left alone: they still count in
-- current_reservations, and a notice says how many stay (cancel them with cancel_reservation
-- if the appointments cannot take place). Blocking a blocked slot changes nothing.
-- Raises CH008 (not the slot's practitioner, or, to an API caller, no such slot), P0002 (no
-- such slot, to the system).
create or replace function private.block_time_slot(p_slot_id uuid)
returns public.time_slot
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_slot public.time_slot;
    v_confirmed integer;
begin
    select s.* into v_slot from public.time_slot as s where s.id = p_slot_id;
    if not found and not private.is_api_request() then
        raise exception 'time slot % does not exist', p_slot_id using errcode = 'P0002';
    elsif v_slot.id is null or (
        private.is_api_request() and v_slot.profile_id is distinct from (select auth.uid())
    ) then
        raise exception 'time slot % is not one you can block (CH008)', p_slot_id
            using errcode = 'CH008', hint = 'Only the slot''s practitioner blocks it; check the id.';
    end if;
    -- Lock order of the booking functions: requests first, then their slot. A request that
    -- arrives once the slot is locked waits, then finds it blocked (CH005).
    perform
    from public.reservation_request as r
    where r.slot_id = p_slot_id and r.status = 'pending'
    order by r.id
    for update;
    select s.* into v_slot from public.time_slot as s where s.id = p_slot_id for update;
    if v_slot.status = 'blocked' then
        return v_slot;
    end if;

    with rejected as (
        update public.reservation_request as r
        set
            status = 'rejected',
            rejection_reason = 'The practitioner blocked this time slot.'
        where r.slot_id = p_slot_id and r.status = 'pending'
        returning r.id, r.patient_id, r.requested_time
    )

    insert into public.notifications (recipient_id, type, title, body, data)
    select
        rejected.patient_id,
        'reservation_request_rejected',
        'Your appointment request was declined',
        'The practitioner is not available at the time you asked for. Please choose another '
        || 'time.',
        pg_catalog.jsonb_build_object(
            'request_id', rejected.id,
            'slot_id', p_slot_id,
            'requested_time', rejected.requested_time
        )
    from rejected
    where rejected.patient_id is not null;

    update public.time_slot as s set status = 'blocked'
    where s.id = p_slot_id
    returning s.* into v_slot;
    v_confirmed := v_slot.current_reservations;
    if v_confirmed > 0 then
        raise notice 'time slot % is blocked; its % confirmed reservation(s) stay booked',
            p_slot_id, v_confirmed
            using hint = 'Cancel them with cancel_reservation if the appointments cannot '
            || 'take place.';
    end if;
    return v_slot;
end
$fn$;

-- unblock_time_slot(p_slot_id) returns time_slot
-- The practitioner (or the system) returns a blocked slot to booking; its status becomes what
-- its time and places say (available, or expired once started).
-- Raises CH008 (not the slot's practitioner, or, to an API caller, no such slot), P0002 (no
-- such slot, to the system).
create or replace function private.unblock_time_slot(p_slot_id uuid)
returns public.time_slot
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_slot public.time_slot;
begin
    select s.* into v_slot from public.time_slot as s where s.id = p_slot_id for update;
    if not found and not private.is_api_request() then
        raise exception 'time slot % does not exist', p_slot_id using errcode = 'P0002';
    elsif v_slot.id is null or (
        private.is_api_request() and v_slot.profile_id is distinct from (select auth.uid())
    ) then
        raise exception 'time slot % is not one you can unblock (CH008)', p_slot_id
            using errcode = 'CH008',
            hint = 'Only the slot''s practitioner unblocks it; check the id.';
    end if;
    update public.time_slot as s set status = 'available'
    where s.id = p_slot_id
    returning s.* into v_slot;
    return v_slot;
end
$fn$;

-- RPC: the API (security invoker) --------------------------------------------------------

-- The functions frontends, the WhatsApp service and the worker call. Each is a security
-- invoker wrapper of the private function of the same name, which is documented above and
-- does the checked, privileged work (Supabase advisors: no security definer function in an
-- exposed schema).

create or replace function public.request_reservation(
    p_slot_id uuid, p_patient_name text, p_patient_phone text, p_details jsonb default '{}'
)
returns jsonb
language sql
set search_path = ''
as $fn$
    select private.request_reservation(p_slot_id, p_patient_name, p_patient_phone, p_details)
$fn$;

create or replace function public.approve_reservation_request(p_request_id uuid)
returns public.reservation
language sql
set search_path = ''
as $fn$
    select private.approve_reservation_request(p_request_id)
$fn$;

create or replace function public.reject_reservation_request(
    p_request_id uuid, p_reason text default null
)
returns public.reservation_request
language sql
set search_path = ''
as $fn$
    select private.reject_reservation_request(p_request_id, p_reason)
$fn$;

create or replace function public.cancel_reservation(
    p_reservation_id uuid, p_reason text default null
)
returns public.reservation
language sql
set search_path = ''
as $fn$
    select private.cancel_reservation(p_reservation_id, p_reason)
$fn$;

create or replace function public.block_time_slot(p_slot_id uuid)
returns public.time_slot
language sql
set search_path = ''
as $fn$
    select private.block_time_slot(p_slot_id)
$fn$;

create or replace function public.unblock_time_slot(p_slot_id uuid)
returns public.time_slot
language sql
set search_path = ''
as $fn$
    select private.unblock_time_slot(p_slot_id)
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
revoke execute on function private.request_client_address() from public;
revoke execute on function private.enforce_anonymous_booking_caps(uuid, uuid, text, text)
from public;
revoke execute on function private.request_reservation(uuid, text, text, jsonb) from public;
revoke execute on function private.approve_reservation_request(uuid) from public;
revoke execute on function private.reject_reservation_request(uuid, text) from public;
revoke execute on function private.cancel_reservation(uuid, text) from public;
revoke execute on function private.block_time_slot(uuid) from public;
revoke execute on function private.unblock_time_slot(uuid) from public;
-- The API wrappers in public call these as the caller; anon only books.
grant execute on function private.request_reservation(uuid, text, text, jsonb)
to anon, authenticated, service_role;
grant execute on function private.approve_reservation_request(uuid)
to authenticated, service_role;
grant execute on function private.reject_reservation_request(uuid, text)
to authenticated, service_role;
grant execute on function private.cancel_reservation(uuid, text) to authenticated, service_role;
grant execute on function private.block_time_slot(uuid) to authenticated, service_role;
grant execute on function private.unblock_time_slot(uuid) to authenticated, service_role;
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
-- request_reservation is open to anon: patients without an account book through it.
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
