-- Backfill of legacy chat threads: the Lifefile history of inbox events, which the backfill
-- worker reads to give a thread's ticket its Lifefile status.

-- The Lifefile history of the inbox events p_event_ids, in the order it happened: each event's
-- ticket status (the first of its status strings private.lifefile_status_map knows), that
-- status's rank, when it happened (the event's own time, else its arrival) and what it says.
-- Events whose status is not mapped are left out (the worker reports them 'unmapped').
create or replace function private.backfill_lifefile_history(p_event_ids uuid[])
returns table (
    event_id uuid,
    status text,
    status_rank integer,
    is_terminal boolean,
    occurred_at timestamptz,
    received_at timestamptz,
    external_status text,
    previous_status text,
    tracking_number text,
    carrier text,
    tracking_url text,
    estimated_delivery timestamptz,
    order_id text,
    rx_number text,
    seq bigint
)
language sql stable
set search_path = ''
as $fn$
    select
        e.id,
        mapped.ticket_status,
        s.rank,
        s.is_terminal,
        coalesce(f.occurred_at, e.received_at),
        e.received_at,
        f.external_status,
        f.previous_status,
        f.tracking_number,
        f.carrier,
        f.tracking_url,
        f.estimated_delivery,
        f.order_id,
        f.rx_number,
        e.seq
    from private.lifefile_webhook_events as e
    cross join lateral private.lifefile_event_fields(e.payload) as f
    cross join lateral (
        select m.ticket_status
        from pg_catalog.unnest(f.status_candidates) with ordinality as c (external_status, n)
        inner join private.lifefile_status_map as m
            on pg_catalog.lower(m.external_status) = pg_catalog.lower(c.external_status)
        order by c.n
        limit 1
    ) as mapped
    inner join public.ticket_statuses as s
        on s.ticket_type = 'prescription' and mapped.ticket_status = s.status
    where e.id = any(p_event_ids)
    order by coalesce(f.occurred_at, e.received_at), e.seq
$fn$;

revoke execute on function private.backfill_lifefile_history(uuid[]) from public;
