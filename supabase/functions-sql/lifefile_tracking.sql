-- Lifefile tracking triggers: tickets create and update their prescription tracking row,
-- which follows the Lifefile ids and wakes the events waiting for their link.

-- The tracking rows of prescription tickets p_ticket_ids that have left 'created' for anything
-- but cancellation (a ticket cancelled before it was ever sent has nothing to track), from
-- their prescriptions (order id, rx number, medications), sent when the ticket was (now, but
-- for a backfilled ticket the legacy prescription's time). Rows already there stay.
create or replace function private.open_prescription_tracking(p_ticket_ids uuid[])
returns void
language plpgsql
set search_path = ''
as $fn$
begin
    insert into public.prescription_tracking (
        ticket_id, prescription_id, pharmacy_id, rx_number, external_order_id,
        medication_name, quantity, current_status, sent_at
    )
    select
        t.id,
        p.id,
        coalesce(t.secondary_provider_id, p.pharmacy_id),
        p.rx_number,
        p.external_order_id,
        i.medication_names,
        i.quantity,
        'sent',
        coalesce(t.sent_at, pg_catalog.now())
    from public.healthcare_tickets as t
    inner join public.prescriptions as p on t.prescription_id = p.id
    left join lateral (
        select
            pg_catalog.string_agg(
                item.medication_name, ', ' order by item.created_at, item.id
            ) as medication_names,
            case when pg_catalog.count(*) = 1 then pg_catalog.max(item.quantity) end as quantity
        from public.prescription_items as item
        where item.prescription_id = p.id
    ) as i on true
    where
        t.id = any(p_ticket_ids)
        and t.ticket_type = 'prescription'
        and t.status not in ('created', 'cancelled')
    on conflict (ticket_id) do nothing;
end
$fn$;

-- The tracking rows of tickets p_ticket_ids reach p_status: the time it was first reached
-- (its <status>_at column), and the current status unless a later one was reached already.
create or replace function private.advance_prescription_tracking(
    p_status text, p_ticket_ids uuid[]
)
returns void
language plpgsql
set search_path = ''
as $fn$
begin
    execute pg_catalog.format(
        'update public.prescription_tracking as t'
        ' set current_status = case when s_new.rank > s_old.rank then $1'
        ' else t.current_status end,'
        ' %1$I = coalesce(t.%1$I, pg_catalog.now())'
        ' from public.ticket_statuses as s_new, public.ticket_statuses as s_old'
        ' where t.ticket_id = any($2)'
        ' and s_new.ticket_type = t.ticket_type and s_new.status = $1'
        ' and s_old.ticket_type = t.ticket_type and s_old.status = t.current_status',
        p_status || '_at'
    ) using p_status, p_ticket_ids;
end
$fn$;

-- Triggers (healthcare_tickets): a prescription ticket that has left 'created' gets its
-- tracking row; afterwards the row follows every status the ticket reaches, whoever moves it
-- (a pharmacy working in the app, an admin): current status and the time each status was first
-- reached, so the metrics cover every pharmacy. Lifefile processing writes the row itself,
-- with the pharmacy's own times. Security definer: the doctor or pharmacist who moves the
-- ticket may not write tracking rows.

-- After update of status, for each row.
create or replace function private.track_prescription_ticket()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.open_prescription_tracking(array[new.id]);
    if new.status <> 'sent' and private.request_source() <> 'lifefile' then
        perform private.advance_prescription_tracking(new.status, array[new.id]);
    end if;
    return null;
end
$fn$;

-- After insert, for each statement: the tickets inserted past 'created' (a bulk insert pays one
-- statement per status, not one per ticket).
create or replace function private.track_new_prescription_tickets()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_status text;
    v_ids uuid[];
begin
    perform private.open_prescription_tracking(array(select n.id from new_tickets as n));
    if private.request_source() = 'lifefile' then
        return null;
    end if;
    for v_status, v_ids in
        select n.status, pg_catalog.array_agg(n.id)
        from new_tickets as n
        where
            n.ticket_type = 'prescription'
            and n.prescription_id is not null
            and n.status not in ('created', 'sent', 'cancelled')
        group by n.status
    loop
        perform private.advance_prescription_tracking(v_status, v_ids);
    end loop;
    return null;
end
$fn$;

-- Trigger (prescriptions, after update of external_order_id, rx_number): the tracking row
-- follows its prescription's Lifefile ids.
create or replace function private.follow_prescription_lifefile_ids()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    update public.prescription_tracking as t
    set
        external_order_id = coalesce(new.external_order_id, t.external_order_id),
        rx_number = coalesce(new.rx_number, t.rx_number)
    where t.prescription_id = new.id;
    return null;
end
$fn$;

-- Trigger (prescription_tracking, after insert or update of external_order_id, rx_number): the
-- link to Lifefile's order has appeared, so the events that arrived before it (unmatched) are
-- due now, even those whose automatic retries are over; the worker is woken.
create or replace function private.wake_unmatched_lifefile_events()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if
        tg_op = 'UPDATE'
        and old.external_order_id is not distinct from new.external_order_id
        and old.rx_number is not distinct from new.rx_number
        then
        return null;
    end if;
    update private.lifefile_webhook_events as e
    set next_attempt_at = pg_catalog.now()
    where
        e.status = 'unmatched'
        and (e.order_id = new.external_order_id or e.rx_number = new.rx_number);
    if found then
        perform pg_catalog.pg_notify('lifefile_webhook_events', 'link');
    end if;
    return null;
end
$fn$;
revoke execute on function private.open_prescription_tracking(uuid[]) from public;
revoke execute on function private.advance_prescription_tracking(text, uuid[]) from public;
revoke execute on function private.track_prescription_ticket() from public;
revoke execute on function private.track_new_prescription_tickets() from public;
revoke execute on function private.follow_prescription_lifefile_ids() from public;
revoke execute on function private.wake_unmatched_lifefile_events() from public;

drop trigger if exists track_prescription_ticket on public.healthcare_tickets;
create trigger track_prescription_ticket
after update of status on public.healthcare_tickets
for each row
when (
    new.ticket_type = 'prescription'
    and new.prescription_id is not null
    and new.status <> 'created'
)
execute function private.track_prescription_ticket();

drop trigger if exists track_new_prescription_tickets on public.healthcare_tickets;
create trigger track_new_prescription_tickets
after insert on public.healthcare_tickets
referencing new table as new_tickets
for each statement execute function private.track_new_prescription_tickets();

drop trigger if exists follow_prescription_lifefile_ids on public.prescriptions;
create trigger follow_prescription_lifefile_ids
after update of external_order_id, rx_number on public.prescriptions
for each row
when (
    old.external_order_id is distinct from new.external_order_id
    or old.rx_number is distinct from new.rx_number
)
execute function private.follow_prescription_lifefile_ids();

drop trigger if exists wake_unmatched_lifefile_events on public.prescription_tracking;
create trigger wake_unmatched_lifefile_events
after insert or update of external_order_id, rx_number on public.prescription_tracking
for each row execute function private.wake_unmatched_lifefile_events();

drop trigger if exists set_updated_at on public.prescription_tracking;
create trigger set_updated_at
before update on public.prescription_tracking
for each row execute function private.set_updated_at();
