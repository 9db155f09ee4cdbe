-- Scheduling sweeps the worker runs every minute: expiring requests whose hold ran out and
-- slots that have started.

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

revoke execute on function public.expire_reservation_requests() from public;
revoke execute on function public.expire_time_slots() from public;
revoke execute on function public.expire_reservation_requests() from anon, authenticated;
revoke execute on function public.expire_time_slots() from anon, authenticated;
grant execute on function public.expire_reservation_requests() to service_role;
grant execute on function public.expire_time_slots() to service_role;
