-- Scheduling: generate_time_slots, which materialises the slots of a service from its
-- practitioner's availability rules.

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

revoke execute on function public.generate_time_slots(uuid, uuid, date, date) from public;
revoke execute on function public.generate_time_slots(uuid, uuid, date, date) from anon;
grant execute on function public.generate_time_slots(uuid, uuid, date, date)
to authenticated, service_role;
