-- One test for "is this an API request?": scheduling used private.is_end_user(), the ticket
-- core private.is_api_request(), both reading the `role` setting. The scheduling functions now
-- call private.is_api_request() (defined with the ticket core) and is_end_user goes.

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

drop function private.is_end_user();
