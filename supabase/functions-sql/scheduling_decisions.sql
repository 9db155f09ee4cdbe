-- Scheduling: what practitioners (or the system) decide after a request: approve, reject,
-- cancel a reservation, block or unblock a slot; and their API wrappers.

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

revoke execute on function private.approve_reservation_request(uuid) from public;
revoke execute on function private.reject_reservation_request(uuid, text) from public;
revoke execute on function private.cancel_reservation(uuid, text) from public;
revoke execute on function private.block_time_slot(uuid) from public;
revoke execute on function private.unblock_time_slot(uuid) from public;
-- The API wrappers in public call these as the caller.
grant execute on function private.approve_reservation_request(uuid)
to authenticated, service_role;
grant execute on function private.reject_reservation_request(uuid, text)
to authenticated, service_role;
grant execute on function private.cancel_reservation(uuid, text) to authenticated, service_role;
grant execute on function private.block_time_slot(uuid) to authenticated, service_role;
grant execute on function private.unblock_time_slot(uuid) to authenticated, service_role;

revoke execute on function public.approve_reservation_request(uuid) from public;
revoke execute on function public.reject_reservation_request(uuid, text) from public;
revoke execute on function public.cancel_reservation(uuid, text) from public;
revoke execute on function public.block_time_slot(uuid) from public;
revoke execute on function public.unblock_time_slot(uuid) from public;
revoke execute on function public.approve_reservation_request(uuid) from anon;
revoke execute on function public.reject_reservation_request(uuid, text) from anon;
revoke execute on function public.cancel_reservation(uuid, text) from anon;
revoke execute on function public.block_time_slot(uuid) from anon;
revoke execute on function public.unblock_time_slot(uuid) from anon;
grant execute on function public.approve_reservation_request(uuid) to authenticated, service_role;
grant execute on function public.reject_reservation_request(uuid, text)
to authenticated, service_role;
grant execute on function public.cancel_reservation(uuid, text) to authenticated, service_role;
grant execute on function public.block_time_slot(uuid) to authenticated, service_role;
grant execute on function public.unblock_time_slot(uuid) to authenticated, service_role;
