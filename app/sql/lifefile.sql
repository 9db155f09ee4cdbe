-- Named queries of the Lifefile webhook: the service stores deliveries, the worker processes
-- them, operators list, show and replay them. Each is one call of a SQL function or one read.

-- name: receive_lifefile_delivery
-- Store one delivery in the inbox; one row per event (id, status, duplicate, error).
select
    r.event_id,
    r.event_status,
    r.duplicate,
    r.error
from private.receive_lifefile_delivery(
    %(body)s, %(headers)s, %(client_addr)s, %(events)s, %(error)s
) as r;

-- name: wake_lifefile_worker
-- Tell the worker new events wait (its own transaction, after the one that stored them).
select pg_notify('lifefile_webhook_events', 'received');

-- name: process_lifefile_events
-- Process up to %(batch_size)s due inbox events (the worker's job); returns how many.
select private.process_lifefile_events(%(batch_size)s);

-- name: list_lifefile_events
-- The newest inbox events, optionally of one status.
select
    e.id,
    e.received_at,
    e.status,
    e.attempts,
    e.order_id,
    e.rx_number,
    e.external_status,
    e.ticket_id,
    e.last_error
from private.lifefile_webhook_events as e
where %(status)s::text is null or e.status = %(status)s::text
order by e.seq desc
limit %(max_rows)s;

-- name: show_lifefile_event
-- One inbox event, everything stored about it.
select
    e.id,
    e.seq,
    e.received_at,
    e.status,
    e.attempts,
    e.next_attempt_at,
    e.processed_at,
    e.last_error,
    e.ticket_id,
    e.dedupe_key,
    e.shape,
    e.order_id,
    e.rx_number,
    e.external_status,
    e.occurred_at,
    e.client_addr,
    e.headers,
    e.body
from private.lifefile_webhook_events as e
where e.id = %(id)s;

-- name: lifefile_event_history
-- The status history row an event produced (none until it is processed).
select
    h.status,
    h.previous_status,
    h.occurred_at,
    h.applied,
    h.note
from public.prescription_status_events as h
where h.webhook_event_id = %(id)s;

-- name: replay_lifefile_event
-- Process one event again now; returns its resulting status.
select private.replay_lifefile_event(%(id)s);

-- name: replay_lifefile_events
-- Replay every event of one status (unmatched, unmapped, failed); each id and its result.
select
    r.event_id,
    r.event_status
from private.replay_lifefile_events(%(status)s) as r;
