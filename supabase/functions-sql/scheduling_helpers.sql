-- Scheduling helpers: who the caller is to a reservation, the status a slot has from its
-- columns, and taking or giving back one place of a slot.
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

revoke execute on function private.is_practitioner() from public;
revoke execute on function private.current_patient_reservation_ids() from public;
revoke execute on function private.is_reservation_practitioner(uuid) from public;
revoke execute on function private.time_slot_status(text, timestamptz, integer, integer, integer)
from public;
revoke execute on function private.claim_time_slot_place(uuid, timestamptz) from public;
revoke execute on function private.release_time_slot_place(uuid, boolean) from public;
grant execute on function private.is_practitioner() to authenticated, service_role;
grant execute on function private.current_patient_reservation_ids()
to authenticated, service_role;
grant execute on function private.is_reservation_practitioner(uuid)
to authenticated, service_role;
