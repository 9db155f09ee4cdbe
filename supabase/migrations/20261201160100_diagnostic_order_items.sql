-- Diagnostic orders with their tests: public.diagnostic_order_items, written by the ordering
-- practice until the order is sent, frozen after; an order is scheduled with its time (and
-- optionally the centre's reservation, schedule_diagnostic_order) and its results are ready
-- only with a result file.

create table public.diagnostic_order_items (
    id uuid primary key default gen_random_uuid(),
    ticket_id uuid not null references public.healthcare_tickets (id) on delete cascade,
    test_code text not null check (length(btrim(test_code)) > 0),
    test_name text not null check (length(btrim(test_name)) > 0),
    specimen text,
    instructions text,
    price numeric(12, 2) check (price >= 0),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- A test once per order (and the index behind the ticket_id foreign key).
    constraint diagnostic_order_items_test_key unique (ticket_id, test_code)
);

comment on table public.diagnostic_order_items is
'The tests of a diagnostic order; frozen once the order is sent.';

-- From functions-sql/diagnostic_orders.sql
-- ------------------------------------------------------------------------------------------

-- Diagnostic orders: the tests of an order (diagnostic_order_items), written by the ordering
-- practice until the order is sent and frozen after; scheduling the order (a time, optionally
-- the centre's reservation); results_ready only with a result file.

-- Before insert, update or delete of a diagnostic_order_items row: API callers must be members
-- of the order's requesting provider (the insert policy's condition, checked first so that a
-- refused caller learns nothing else), and the order must still be a draft ('created'): once
-- sent, the tests the centre received are frozen (CH007), for the system too. The system may
-- delete (a ticket's documented erasure cascades here).
create or replace function private.check_diagnostic_order_item()
returns trigger
language plpgsql
set search_path = ''
as $fn$
declare
    v_row public.diagnostic_order_items := case when tg_op = 'DELETE' then old else new end;
    v_ticket public.healthcare_tickets;
begin
    if tg_op = 'DELETE' and private.is_system_actor() then
        return old;
    end if;
    select t.* into v_ticket from public.healthcare_tickets as t where t.id = v_row.ticket_id;
    -- Security invoker: an API caller reads the order through its RLS (a stranger finds none).
    if not private.is_system_actor() and (
        v_ticket.id is null or not private.is_provider_member(v_ticket.primary_provider_id)
    ) then
        raise exception 'new row violates row-level security policy for table "%"',
            tg_table_name
            using errcode = '42501';
    end if;
    if v_ticket.ticket_type is distinct from 'diagnostic' then
        raise exception 'ticket % is not a diagnostic order; only diagnostic orders list tests',
            v_row.ticket_id
            using errcode = '23514', hint = 'Add tests to a diagnostic ticket.';
    end if;
    if tg_op = 'UPDATE' and new.ticket_id is distinct from old.ticket_id then
        raise exception 'a test stays on its order (CH007)'
            using errcode = 'CH007', hint = 'Remove it here and add it to the other order.';
    end if;
    if v_ticket.status <> 'created' then
        raise exception 'diagnostic order % is ''%''; its tests are frozen once it was sent (CH007)',
            v_ticket.id, v_ticket.status
            using errcode = 'CH007',
            hint = 'Cancel the order and send a new one to change the tests.';
    end if;
    if tg_op = 'DELETE' then
        return old;
    end if;
    new.updated_at := pg_catalog.now();
    return new;
end
$fn$;

-- Before a diagnostic order's status changes (after the status rules): it is scheduled only
-- with its time, and its results are ready only once a result file is listed for it
-- (ticket_attachments, kind 'result'). A system feed that skips past these statuses is not
-- stopped here (it may move forward), but one that lands on them is.
create or replace function private.verify_diagnostic_order()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    if new.status = 'scheduled' and new.scheduled_time is null then
        raise exception 'ticket %: a diagnostic order is scheduled with its time', new.id
            using errcode = '23514',
            hint = 'Set scheduled_time in the same update, or call schedule_diagnostic_order.';
    end if;
    if new.status = 'results_ready' and not exists (
        select from public.ticket_attachments as a
        where a.ticket_id = new.id and a.kind = 'result'
    ) then
        raise exception 'ticket %: upload a result file before marking the results ready', new.id
            using errcode = '23514',
            hint = 'Upload to <ticket id>/results/<file name> in bucket ticket-files and call '
            || 'register_ticket_attachment.';
    end if;
    return new;
end
$fn$;

-- The work of public.schedule_diagnostic_order, with the privileges it needs (it sets the
-- order's appointment, which no API caller writes directly).
create or replace function private.schedule_diagnostic_order(
    p_ticket_id uuid, p_scheduled_time timestamptz, p_reservation_id uuid default null
)
returns public.healthcare_tickets
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket public.healthcare_tickets;
    v_time timestamptz := p_scheduled_time;
begin
    if (select auth.uid()) is null then
        raise exception 'sign in to schedule diagnostic orders'
            using errcode = '42501', hint = 'Call schedule_diagnostic_order as the centre.';
    end if;
    select t.* into v_ticket from public.healthcare_tickets as t
    where t.id = p_ticket_id
    for update;
    if v_ticket.id is null or v_ticket.ticket_type <> 'diagnostic'
        or not private.fulfiller_is_party(v_ticket.sent_at)
        or not private.is_provider_member(v_ticket.secondary_provider_id) then
        raise exception 'ticket % is not a diagnostic order your centre fulfils (CH008)',
            p_ticket_id
            using errcode = 'CH008', hint = 'Schedule orders sent to your centre.';
    end if;
    if v_ticket.status <> 'sent' then
        raise exception 'diagnostic order % is ''%''; only a sent order is scheduled (CH001)',
            p_ticket_id, v_ticket.status
            using errcode = 'CH001', hint = 'Change scheduled_time on the order instead.';
    end if;
    if p_reservation_id is not null then
        v_ticket.appointment_id := p_reservation_id;
        -- The reservation must be this patient's, with a member of the centre (CH008).
        perform private.check_ticket_appointment(v_ticket);
        select coalesce(v_time, s.start_time) into v_time
        from public.reservation as r
        inner join public.time_slot as s on r.slot_id = s.id
        where r.id = p_reservation_id;
    end if;
    if v_time is null then
        raise exception 'give the time of the appointment, or the reservation that holds it'
            using errcode = '22023', hint = 'schedule_diagnostic_order(ticket, time, reservation).';
    end if;
    update public.healthcare_tickets as t
    set
        status = 'scheduled',
        scheduled_time = v_time,
        appointment_id = coalesce(p_reservation_id, t.appointment_id)
    where t.id = p_ticket_id
    returning t.* into v_ticket;
    return v_ticket;
end
$fn$;

-- schedule_diagnostic_order(p_ticket_id, p_scheduled_time, p_reservation_id default null): the
-- diagnostics centre schedules a sent order: status 'scheduled', scheduled_time (given, else the
-- start of the reservation's slot) and, when given, appointment_id = the centre's reservation
-- with the patient. Returns the ticket. Raises 42501 when no user is signed in; CH008 when the
-- caller's centre does not fulfil the order, or the reservation is not this patient's with a
-- member of the centre; CH001 when the order is not 'sent'; 22023 without a time.
create or replace function public.schedule_diagnostic_order(
    p_ticket_id uuid, p_scheduled_time timestamptz, p_reservation_id uuid default null
)
returns public.healthcare_tickets
language sql
security invoker
set search_path = ''
as $fn$
    select * from private.schedule_diagnostic_order(p_ticket_id, p_scheduled_time, p_reservation_id)
$fn$;

revoke execute on function private.check_diagnostic_order_item() from public;
revoke execute on function private.verify_diagnostic_order() from public;
revoke execute on function private.schedule_diagnostic_order(uuid, timestamptz, uuid) from public;
revoke execute on function public.schedule_diagnostic_order(
    uuid, timestamptz, uuid
) from public, anon;
grant execute on function private.schedule_diagnostic_order(
    uuid, timestamptz, uuid
) to authenticated, service_role;
grant execute on function public.schedule_diagnostic_order(
    uuid, timestamptz, uuid
) to authenticated, service_role;

drop trigger if exists check_diagnostic_order_item on public.diagnostic_order_items;
create trigger check_diagnostic_order_item
before insert or update or delete on public.diagnostic_order_items
for each row execute function private.check_diagnostic_order_item();

drop trigger if exists verify_diagnostic_order on public.healthcare_tickets;
create trigger verify_diagnostic_order
before update of status on public.healthcare_tickets
for each row
when (new.ticket_type = 'diagnostic' and new.status is distinct from old.status)
execute function private.verify_diagnostic_order();

-- From policies/diagnostic_order_items.sql
-- ------------------------------------------------------------------------------------------

-- diagnostic_order_items: the tests of a diagnostic order. The order's parties read them; the
-- ordering practice (members of the primary provider) adds, changes and removes them while the
-- order is a draft (the trigger in functions-sql/diagnostic_orders.sql freezes them once sent,
-- CH007). Judged on the ticket's own columns, as the timeline is.

alter table public.diagnostic_order_items enable row level security;

revoke all on public.diagnostic_order_items from anon, authenticated, service_role;
grant select, delete on public.diagnostic_order_items to authenticated;
-- Not id (a chosen id would tell whether it exists), nor the bookkeeping columns.
grant insert (
    ticket_id, test_code, test_name, specimen, instructions, price
) on public.diagnostic_order_items to authenticated;
grant update (
    test_code, test_name, specimen, instructions, price
) on public.diagnostic_order_items to authenticated;
grant select, insert, update, delete on public.diagnostic_order_items to service_role;

drop policy if exists "Ticket parties can read diagnostic tests"
on public.diagnostic_order_items;
create policy "Ticket parties can read diagnostic tests"
on public.diagnostic_order_items for select to authenticated
using (
    exists (
        select from public.healthcare_tickets as t
        where
            t.id = diagnostic_order_items.ticket_id
            and (
                t.patient_id = (select auth.uid())
                or t.primary_provider_id = any(array(select private.current_provider_ids()))
                or (
                    t.sent_at is not null
                    and t.secondary_provider_id = any(array(select private.current_provider_ids()))
                )
                or (select private.is_admin())
            )
    )
);

drop policy if exists "Ordering practices can add diagnostic tests"
on public.diagnostic_order_items;
create policy "Ordering practices can add diagnostic tests"
on public.diagnostic_order_items for insert to authenticated
with check (
    exists (
        select from public.healthcare_tickets as t
        where
            t.id = diagnostic_order_items.ticket_id
            and t.ticket_type = 'diagnostic'
            and t.primary_provider_id = any(array(select private.current_provider_ids()))
    )
);

drop policy if exists "Ordering practices can change diagnostic tests"
on public.diagnostic_order_items;
create policy "Ordering practices can change diagnostic tests"
on public.diagnostic_order_items for update to authenticated
using (
    exists (
        select from public.healthcare_tickets as t
        where
            t.id = diagnostic_order_items.ticket_id
            and t.primary_provider_id = any(array(select private.current_provider_ids()))
    )
)
with check (
    exists (
        select from public.healthcare_tickets as t
        where
            t.id = diagnostic_order_items.ticket_id
            and t.primary_provider_id = any(array(select private.current_provider_ids()))
    )
);

drop policy if exists "Ordering practices can remove diagnostic tests"
on public.diagnostic_order_items;
create policy "Ordering practices can remove diagnostic tests"
on public.diagnostic_order_items for delete to authenticated
using (
    exists (
        select from public.healthcare_tickets as t
        where
            t.id = diagnostic_order_items.ticket_id
            and t.primary_provider_id = any(array(select private.current_provider_ids()))
    )
);
