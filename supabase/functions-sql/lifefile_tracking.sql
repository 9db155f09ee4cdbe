-- Lifefile tracking triggers: tickets create and update their prescription tracking row,
-- which follows the Lifefile ids and wakes the events waiting for their link.

-- Trigger (healthcare_tickets, after insert or update of status): a prescription ticket that
-- has left 'created' for anything but cancellation gets its tracking row, from its
-- prescription (order id, rx number, medications); afterwards the row follows every status
-- the ticket reaches, whoever moves it (a pharmacy working in the app, Lifefile, an admin):
-- current status and the time each status was first reached, so the metrics cover every
-- pharmacy. Security definer: the doctor or pharmacist who moves the ticket may not write
-- tracking rows.
create or replace function private.track_prescription_ticket()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    insert into public.prescription_tracking (
        ticket_id, prescription_id, pharmacy_id, rx_number, external_order_id,
        medication_name, quantity, current_status, sent_at
    )
    select
        new.id,
        p.id,
        coalesce(new.secondary_provider_id, p.pharmacy_id),
        p.rx_number,
        p.external_order_id,
        i.medication_names,
        i.quantity,
        'sent',
        pg_catalog.now()
    from public.prescriptions as p
    left join lateral (
        select
            pg_catalog.string_agg(
                item.medication_name, ', ' order by item.created_at, item.id
            ) as medication_names,
            case when pg_catalog.count(*) = 1 then pg_catalog.max(item.quantity) end as quantity
        from public.prescription_items as item
        where item.prescription_id = p.id
    ) as i on true
    -- A ticket cancelled before it was ever sent has nothing to track.
    where p.id = new.prescription_id and new.status <> 'cancelled'
    on conflict (ticket_id) do nothing;

    -- Lifefile processing writes the row itself, with the pharmacy's own times.
    if new.status <> 'sent' and private.request_source() <> 'lifefile' then
        execute pg_catalog.format(
            'update public.prescription_tracking as t'
            ' set current_status = case when s_new.rank > s_old.rank then $1'
            ' else t.current_status end,'
            ' %1$I = coalesce(t.%1$I, pg_catalog.now())'
            ' from public.ticket_statuses as s_new, public.ticket_statuses as s_old'
            ' where t.ticket_id = $2'
            ' and s_new.ticket_type = t.ticket_type and s_new.status = $1'
            ' and s_old.ticket_type = t.ticket_type and s_old.status = t.current_status',
            new.status || '_at'
        ) using new.status, new.id;
    end if;
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
revoke execute on function private.track_prescription_ticket() from public;
revoke execute on function private.follow_prescription_lifefile_ids() from public;
revoke execute on function private.wake_unmatched_lifefile_events() from public;

drop trigger if exists track_prescription_ticket on public.healthcare_tickets;
create trigger track_prescription_ticket
after insert or update of status on public.healthcare_tickets
for each row
when (
    new.ticket_type = 'prescription'
    and new.prescription_id is not null
    and new.status <> 'created'
)
execute function private.track_prescription_ticket();

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
