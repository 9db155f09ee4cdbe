-- Lifefile webhook: reading events of either payload shape, storing deliveries in the inbox,
-- processing them into prescription tracking, status history and the ticket, replaying them;
-- and the triggers that create tracking rows and wake events waiting for their link.

-- A timestamp from a payload string, or null when it is not one (a bad date in an event must
-- not make the event unstorable).
create or replace function private.lifefile_timestamp(p_value text)
returns timestamptz
language plpgsql stable
set search_path = ''
as $fn$
begin
    return nullif(btrim(p_value), '')::timestamptz;
exception when others then
    return null;
end
$fn$;

-- Which of the two payload shapes an event has: 'event' (the fulfilment plan's
-- {eventType, prescription{...}, status{current, ...}, tracking{...}}), 'data_push' (one
-- element of Lifefile's Data Push array: {orderId, rxNumber, rxStatus, orderStatus, ...}),
-- or null when it is neither. Both need an order reference and a status.
create or replace function private.lifefile_event_shape(p_payload jsonb)
returns text
language sql immutable
set search_path = ''
as $fn$
    select case
        when pg_catalog.jsonb_typeof(p_payload) <> 'object' then null
        when
            pg_catalog.jsonb_typeof(p_payload -> 'prescription') = 'object'
            and pg_catalog.jsonb_typeof(p_payload -> 'status') = 'object'
            and coalesce(btrim(p_payload #>> '{status,current}'), '') <> ''
            and coalesce(
                btrim(p_payload #>> '{prescription,orderId}'),
                btrim(p_payload #>> '{prescription,rxNumber}'),
                ''
            ) <> ''
            then 'event'
        when
            coalesce(
                btrim(p_payload ->> 'orderId'),
                btrim(p_payload ->> 'rxNumber'),
                btrim(p_payload ->> 'orderReferenceId'),
                ''
            ) <> ''
            and coalesce(btrim(p_payload ->> 'rxStatus'), btrim(p_payload ->> 'orderStatus'), '')
            <> ''
            then 'data_push'
    end
$fn$;

-- What an event says, whatever its shape: the order it names (Lifefile's orderId, the rx number,
-- the orderReferenceId we gave Lifefile), its status strings (for a Data Push element the rx
-- status first, then the order status: the first one the status map knows is used), when the
-- status changed, and the tracking and medication details it carries. Null fields when absent.
create or replace function private.lifefile_event_fields(
    p_payload jsonb,
    out shape text,
    out order_id text,
    out rx_number text,
    out order_reference text,
    out external_status text,
    out status_candidates text[],
    out previous_status text,
    out occurred_at timestamptz,
    out tracking_number text,
    out carrier text,
    out tracking_url text,
    out estimated_delivery timestamptz,
    out medication_name text,
    out quantity numeric
)
language plpgsql stable
set search_path = ''
as $fn$
declare
    v_flat jsonb;
begin
    shape := private.lifefile_event_shape(p_payload);
    if shape = 'event' then
        -- Flatten to the Data Push's field names, so one reading below serves both shapes.
        v_flat := coalesce(p_payload -> 'tracking', '{}') || (p_payload -> 'prescription')
            || pg_catalog.jsonb_build_object(
                'rxStatus', p_payload #> '{status,current}',
                'previousStatus', p_payload #> '{status,previous}',
                'changedAt', coalesce(p_payload #> '{status,changedAt}', p_payload -> 'timestamp')
            );
        if v_flat ->> 'orderReferenceId' is null then
            v_flat := v_flat || pg_catalog.jsonb_build_object(
                'orderReferenceId', p_payload -> 'orderReferenceId'
            );
        end if;
    elsif shape = 'data_push' then
        v_flat := p_payload;
    else
        return;
    end if;
    order_id := nullif(btrim(v_flat ->> 'orderId'), '');
    rx_number := nullif(btrim(v_flat ->> 'rxNumber'), '');
    order_reference := nullif(btrim(v_flat ->> 'orderReferenceId'), '');
    status_candidates := pg_catalog.array_remove(
        array[nullif(btrim(v_flat ->> 'rxStatus'), ''), nullif(btrim(v_flat ->> 'orderStatus'), '')],
        null
    );
    external_status := status_candidates[1];
    previous_status := nullif(
        btrim(coalesce(v_flat ->> 'previousStatus', v_flat ->> 'previousRxStatus')), ''
    );
    occurred_at := coalesce(
        private.lifefile_timestamp(v_flat ->> 'changedAt'),
        private.lifefile_timestamp(v_flat ->> 'statusDate'),
        private.lifefile_timestamp(v_flat ->> 'updatedAt'),
        private.lifefile_timestamp(v_flat ->> 'timestamp')
    );
    tracking_number := nullif(btrim(v_flat ->> 'trackingNumber'), '');
    carrier := nullif(btrim(coalesce(v_flat ->> 'carrier', v_flat ->> 'shippingCarrier')), '');
    tracking_url := nullif(btrim(v_flat ->> 'trackingUrl'), '');
    estimated_delivery := private.lifefile_timestamp(v_flat ->> 'estimatedDelivery');
    medication_name := nullif(
        btrim(coalesce(v_flat ->> 'medicationName', v_flat ->> 'drugName')), ''
    );
    if btrim(v_flat ->> 'quantity') ~ '^[0-9]+(\.[0-9]+)?$' then
        quantity := nullif(btrim(v_flat ->> 'quantity')::numeric, 0);
    end if;
end
$fn$;

-- The dedupe key of an event: its own event id (eventId) when it carries one, otherwise the
-- SHA-256 of its canonical JSON (jsonb's text form: keys sorted, whitespace normalised). A
-- redelivery is a duplicate; the same order and status with another changedAt is a new event.
-- A bare "id" is not taken for an event id: it may name the prescription or the fill, and
-- would then swallow that order's later status changes as duplicates.
create or replace function private.lifefile_dedupe_key(p_payload jsonb)
returns text
language sql immutable
set search_path = ''
as $fn$
    select coalesce(
        'id:' || nullif(
            btrim(coalesce(p_payload ->> 'eventId', p_payload ->> 'event_id')),
            ''
        ),
        'sha256:' || pg_catalog.encode(
            pg_catalog.sha256(pg_catalog.convert_to(p_payload::text, 'UTF8')), 'hex'
        )
    )
$fn$;

-- Stores one delivery in the inbox, in the caller's transaction (the service commits before
-- it answers). Takes the raw body, the request headers (credentials already removed), the
-- client address, and either p_events (the raw text of each element when the body is a JSON
-- array; null when the body is one JSON object) or p_error (why the body is not JSON).
-- A body that is not JSON, or any element that is not a known shape, makes the whole delivery
-- one 'invalid' row. Returns one row per event: its id, its status, whether it was already in
-- the inbox (a duplicate: nothing new stored) and, for an invalid delivery, why.
-- It does not NOTIFY the worker: a transaction that notifies holds a database-wide lock through
-- its commit's WAL flush, which would make concurrent deliveries commit one at a time. The
-- caller notifies lifefile_webhook_events in a transaction of its own, after this one commits.
create or replace function private.receive_lifefile_delivery(
    p_body text,
    p_headers jsonb,
    p_client_addr text,
    p_events text[] default null,
    p_error text default null
)
returns table (event_id uuid, event_status text, duplicate boolean, error text)
language plpgsql
set search_path = ''
as $fn$
declare
    v_texts text[] := coalesce(p_events, array[p_body]);
    v_payloads jsonb[] := array[]::jsonb[];
    v_payload jsonb;
    v_key text;
begin
    if p_error is null then
        for v_index in 1 .. coalesce(pg_catalog.array_length(v_texts, 1), 0) loop
            begin
                v_payload := v_texts[v_index]::jsonb;
            exception when others then
                -- What Python's parser accepts and jsonb refuses (\u0000, NaN).
                p_error := pg_catalog.format(
                    '%s is not valid JSON: %s',
                    case when p_events is null then 'the body' else 'element ' || v_index end,
                    sqlerrm
                );
                exit;
            end;
            if private.lifefile_event_shape(v_payload) is null then
                p_error := pg_catalog.format(
                    '%s is not a Lifefile event: expected an object with prescription '
                    '{orderId or rxNumber} and status {current}, or a Data Push element with '
                    'orderId, rxNumber or orderReferenceId and rxStatus or orderStatus',
                    case when p_events is null then 'the body' else 'element ' || v_index end
                );
                exit;
            end if;
            v_payloads := v_payloads || v_payload;
        end loop;
        if p_error is null and coalesce(pg_catalog.array_length(v_texts, 1), 0) = 0 then
            p_error := 'the body is an empty array: no events';
        end if;
    end if;

    if p_error is not null then
        -- Invalid bodies are kept once each, so operators see them without a retry storm
        -- filling the inbox.
        v_key := 'invalid:' || pg_catalog.encode(
            pg_catalog.sha256(pg_catalog.convert_to(p_body, 'UTF8')), 'hex'
        );
        insert into private.lifefile_webhook_events as e (
            dedupe_key, body, headers, client_addr, status, last_error
        )
        values (v_key, p_body, p_headers, p_client_addr, 'invalid', p_error)
        on conflict (dedupe_key) do nothing;
        return query
        select e.id, e.status, false, e.last_error
        from private.lifefile_webhook_events as e
        where e.dedupe_key = v_key;
        return;
    end if;

    for v_index in 1 .. pg_catalog.array_length(v_texts, 1) loop
        v_payload := v_payloads[v_index];
        v_key := private.lifefile_dedupe_key(v_payload);
        insert into private.lifefile_webhook_events as e (
            dedupe_key, body, payload, headers, client_addr, shape, order_id, rx_number,
            order_key, external_status, occurred_at
        )
        select
            v_key, v_texts[v_index], v_payload, p_headers, p_client_addr, f.shape, f.order_id,
            f.rx_number, coalesce(f.order_id, f.rx_number, f.order_reference),
            f.external_status, f.occurred_at
        from private.lifefile_event_fields(v_payload) as f
        on conflict (dedupe_key) do nothing
        returning e.id, e.status, false into event_id, event_status, duplicate;
        if event_id is null then
            -- A redelivery, perhaps committed a moment ago by a concurrent request: this
            -- statement's snapshot is newer than the insert's wait, so it sees that row.
            select e.id, e.status, true into event_id, event_status, duplicate
            from private.lifefile_webhook_events as e
            where e.dedupe_key = v_key;
        end if;
        return next;
        event_id := null;
    end loop;
end
$fn$;

revoke execute on function private.lifefile_timestamp(text) from public;
revoke execute on function private.lifefile_event_shape(jsonb) from public;
revoke execute on function private.lifefile_event_fields(jsonb) from public;
revoke execute on function private.lifefile_dedupe_key(jsonb) from public;
revoke execute on function private.receive_lifefile_delivery(text, jsonb, text, text[], text)
from public;

-- How long an event whose order is unknown waits before its next attempt: 1 min, doubling,
-- at most an hour apart; null after the tenth attempt (about four hours in all), when the
-- event stays 'unmatched' and listed until a link appears or an operator replays it.
create or replace function private.lifefile_retry_delay(p_attempts integer)
returns interval
language sql immutable
set search_path = ''
as $fn$
    select case
        when p_attempts < 10
            then pg_catalog.make_interval(
                mins => least(60, power(2, greatest(p_attempts, 1) - 1)::integer)
            )
    end
$fn$;

-- A carrier's public tracking page for a tracking number, for the carriers we know.
create or replace function private.carrier_tracking_url(p_carrier text, p_tracking_number text)
returns text
language sql immutable
set search_path = ''
as $fn$
    select case lower(btrim(p_carrier))
        when 'ups' then 'https://www.ups.com/track?tracknum='
        when 'fedex' then 'https://www.fedex.com/fedextrack/?trknbr='
        when 'usps' then 'https://tools.usps.com/go/TrackConfirmAction?tLabels='
        when 'dhl' then 'https://www.dhl.com/en/express/tracking.html?AWB='
    end || pg_catalog.replace(btrim(p_tracking_number), ' ', '')
$fn$;

-- The tracking row an event is about (a Lifefile order belongs to one prescription): its id,
-- or null and why (ambiguity, for the event's last_error: it names the event's own ids, never
-- another prescription). An orderReferenceId naming our prescription id wins. Otherwise
-- Lifefile's order id and the rx number must agree: each may name at most one prescription,
-- and when both name one it must be the same; rows of live tickets (neither cancelled nor
-- failed) are preferred, the others only count when no live row matches.
create or replace function private.match_lifefile_tracking(
    p_order_id text,
    p_rx_number text,
    p_order_reference text,
    out tracking_id uuid,
    out ambiguity text
)
language plpgsql
stable
set search_path = ''
as $fn$
declare
    v_reference uuid;
    v_by_order uuid[];
    v_by_rx uuid[];
begin
    if p_order_reference ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
        v_reference := p_order_reference::uuid;
        select t.id into tracking_id
        from public.prescription_tracking as t
        where t.prescription_id = v_reference;
        if tracking_id is not null then
            return;
        end if;
    end if;
    -- Live rows first: a cancelled ticket's old order id never hides the live one.
    select
        coalesce(
            pg_catalog.array_agg(m.id) filter (where m.live and m.by_order),
            pg_catalog.array_agg(m.id) filter (where m.by_order)
        ),
        coalesce(
            pg_catalog.array_agg(m.id) filter (where m.live and m.by_rx),
            pg_catalog.array_agg(m.id) filter (where m.by_rx)
        )
    into v_by_order, v_by_rx
    from (
        select
            t.id,
            k.status not in ('cancelled', 'failed') as live,
            coalesce(t.external_order_id = p_order_id, false) as by_order,
            coalesce(t.rx_number = p_rx_number, false) as by_rx
        from public.prescription_tracking as t
        inner join public.healthcare_tickets as k on t.ticket_id = k.id
        where t.external_order_id = p_order_id or t.rx_number = p_rx_number
    ) as m;
    if pg_catalog.cardinality(v_by_order) > 1 then
        ambiguity := pg_catalog.format(
            'ambiguous: Lifefile order %s names %s prescriptions', p_order_id,
            pg_catalog.cardinality(v_by_order)
        );
        return;
    end if;
    if pg_catalog.cardinality(v_by_order) = 1 then
        if pg_catalog.cardinality(v_by_rx) > 0 and not v_by_order[1] = any(v_by_rx) then
            ambiguity := pg_catalog.format(
                'ambiguous: Lifefile order %s names one prescription and rx number %s another',
                p_order_id, p_rx_number
            );
            return;
        end if;
        tracking_id := v_by_order[1];
        return;
    end if;
    if pg_catalog.cardinality(v_by_rx) > 1 then
        ambiguity := pg_catalog.format(
            'ambiguous: rx number %s names %s prescriptions and the event has no order id '
            'that tells them apart', p_rx_number, pg_catalog.cardinality(v_by_rx)
        );
        return;
    end if;
    tracking_id := v_by_rx[1];
end
$fn$;

-- Processes one inbox event; idempotent. Takes the event id; returns its resulting status:
--   'processed' — matched, recorded in prescription_status_events, tracking updated, and the
--                 ticket moved forward (as the system, app.source 'lifefile') when the status
--                 is ahead of the ticket's; an older event is recorded and never moves it back;
--   'unmapped'  — its status is not in private.lifefile_status_map (add it, then replay);
--   'unmatched' — no tracking row has its order id, rx number or reference yet; retried with
--                 backoff (private.lifefile_retry_delay), then left listed;
--   'invalid'   — unchanged: an invalid event cannot be processed.
-- An event already processed (or already in the history) is not processed again.
-- Raises P0002 when the event does not exist.
create or replace function private.process_lifefile_event(p_event_id uuid)
returns text
language plpgsql
set search_path = ''
as $fn$
declare
    v_event private.lifefile_webhook_events;
    v_fields record;
    v_status text;
    v_rank integer;
    v_tracking public.prescription_tracking;
    v_tracking_rank integer;
    v_tracking_terminal boolean;
    v_ticket public.healthcare_tickets;
    v_ticket_rank integer;
    v_ticket_terminal boolean;
    v_occurred timestamptz;
    v_is_newest boolean;
    v_applied boolean := false;
    v_note text;
    v_source text;
    v_tracking_id uuid;
    v_ambiguity text;
    v_delay interval;
begin
    select e.* into v_event
    from private.lifefile_webhook_events as e
    where e.id = p_event_id
    for update;
    if not found then
        raise exception 'no Lifefile webhook event %', p_event_id
            using errcode = 'P0002', hint = 'List events with `carehub webhooks list`.';
    end if;
    if v_event.status in ('processed', 'invalid') then
        return v_event.status;
    end if;
    if exists (
        select from public.prescription_status_events as h
        where h.webhook_event_id = p_event_id
    ) then
        update private.lifefile_webhook_events
        set status = 'processed', processed_at = coalesce(processed_at, pg_catalog.now())
        where id = p_event_id;
        return 'processed';
    end if;

    select f.* into v_fields from private.lifefile_event_fields(v_event.payload) as f;

    -- The first of the event's status strings the map knows, case-insensitively.
    select m.ticket_status into v_status
    from pg_catalog.unnest(v_fields.status_candidates) with ordinality as c (external_status, n)
    inner join private.lifefile_status_map as m
        on lower(m.external_status) = lower(c.external_status)
    order by c.n
    limit 1;
    if v_status is null then
        update private.lifefile_webhook_events
        set
            status = 'unmapped',
            attempts = attempts + 1,
            next_attempt_at = null,
            last_error = pg_catalog.format(
                'Lifefile status %s is not mapped: add it to private.lifefile_status_map '
                '(external_status, ticket_status), then `carehub webhooks replay %s`',
                pg_catalog.array_to_string(v_fields.status_candidates, ' / '), p_event_id
            )
        where id = p_event_id;
        return 'unmapped';
    end if;

    select m.tracking_id, m.ambiguity into v_tracking_id, v_ambiguity
    from private.match_lifefile_tracking(
        v_fields.order_id, v_fields.rx_number, v_fields.order_reference
    ) as m;
    if v_tracking_id is not null then
        select t.* into v_tracking
        from public.prescription_tracking as t
        where t.id = v_tracking_id
        for update;
    end if;
    if v_tracking_id is null or not found then
        v_delay := private.lifefile_retry_delay(v_event.attempts + 1);
        update private.lifefile_webhook_events
        set
            status = 'unmatched',
            attempts = attempts + 1,
            next_attempt_at = pg_catalog.now() + v_delay,
            last_error = pg_catalog.format(
                '%s: %s (it is retried automatically%s), or `carehub webhooks replay %s`',
                coalesce(
                    v_ambiguity,
                    pg_catalog.format(
                        'no sent prescription has Lifefile order %s or rx number %s',
                        coalesce(v_fields.order_id, '-'), coalesce(v_fields.rx_number, '-')
                    )
                ),
                case
                    when v_ambiguity is null
                        then 'set the prescription''s external_order_id or rx_number'
                    else 'correct the prescriptions'' external_order_id or rx_number'
                end,
                case
                    when v_delay is null then '; automatic retries are over'
                    else ' at ' || (pg_catalog.now() + v_delay)::text
                end,
                p_event_id
            )
        where id = p_event_id;
        return 'unmatched';
    end if;

    v_occurred := coalesce(v_fields.occurred_at, v_event.received_at);
    select t.* into v_ticket
    from public.healthcare_tickets as t
    where t.id = v_tracking.ticket_id
    for update;
    select s.rank into v_rank
    from public.ticket_statuses as s
    where s.ticket_type = 'prescription' and s.status = v_status;
    select s.rank, s.is_terminal into v_ticket_rank, v_ticket_terminal
    from public.ticket_statuses as s
    where s.ticket_type = v_ticket.ticket_type and s.status = v_ticket.status;
    select s.rank, s.is_terminal into v_tracking_rank, v_tracking_terminal
    from public.ticket_statuses as s
    where s.ticket_type = 'prescription' and s.status = v_tracking.current_status;

    if v_ticket_terminal then
        v_note := pg_catalog.format('ticket already %s: recorded only', v_ticket.status);
    elsif v_rank <= v_ticket_rank then
        v_note := pg_catalog.format(
            'ticket already %s, at or past %s: recorded only', v_ticket.status, v_status
        );
    else
        v_source := pg_catalog.current_setting('app.source', true);
        perform pg_catalog.set_config('app.source', 'lifefile', true);
        begin
            update public.healthcare_tickets
            set status = v_status
            where id = v_ticket.id;
            v_applied := true;
        exception when sqlstate 'CH001' then
            -- The state machine refuses it (say, failed from ready): keep the report anyway.
            v_note := pg_catalog.format(
                'ticket not moved from %s to %s: %s', v_ticket.status, v_status, sqlerrm
            );
        end;
        perform pg_catalog.set_config('app.source', coalesce(v_source, ''), true);
    end if;

    -- One update of the tracking row (the ticket's own tracking trigger leaves it alone for
    -- app.source 'lifefile'). The newest report's tracking details win; an older one only
    -- fills gaps. The time the status was reached is Lifefile's (the earliest report wins).
    v_is_newest := v_tracking.last_event_at is null or v_occurred >= v_tracking.last_event_at;
    if v_is_newest then
        v_tracking.tracking_number := coalesce(
            v_fields.tracking_number, v_tracking.tracking_number
        );
        v_tracking.carrier := coalesce(v_fields.carrier, v_tracking.carrier);
        v_tracking.estimated_delivery := coalesce(
            v_fields.estimated_delivery, v_tracking.estimated_delivery
        );
        v_tracking.tracking_url := coalesce(v_fields.tracking_url, v_tracking.tracking_url);
    else
        v_tracking.tracking_number := coalesce(
            v_tracking.tracking_number, v_fields.tracking_number
        );
        v_tracking.carrier := coalesce(v_tracking.carrier, v_fields.carrier);
        v_tracking.estimated_delivery := coalesce(
            v_tracking.estimated_delivery, v_fields.estimated_delivery
        );
        v_tracking.tracking_url := coalesce(v_tracking.tracking_url, v_fields.tracking_url);
    end if;
    v_tracking.tracking_url := coalesce(
        v_tracking.tracking_url,
        private.carrier_tracking_url(v_tracking.carrier, v_tracking.tracking_number)
    );
    update public.prescription_tracking as t
    set
        current_status = case
            when not v_tracking_terminal and v_rank > v_tracking_rank then v_status
            else t.current_status
        end,
        sent_at = case when v_status = 'sent' then least(t.sent_at, v_occurred) else t.sent_at end,
        received_at = case
            when v_status = 'received' then least(t.received_at, v_occurred) else t.received_at
        end,
        processing_at = case
            when v_status = 'processing' then least(t.processing_at, v_occurred)
            else t.processing_at
        end,
        ready_at = case
            when v_status = 'ready' then least(t.ready_at, v_occurred) else t.ready_at
        end,
        shipped_at = case
            when v_status = 'shipped' then least(t.shipped_at, v_occurred) else t.shipped_at
        end,
        out_for_delivery_at = case
            when v_status = 'out_for_delivery' then least(t.out_for_delivery_at, v_occurred)
            else t.out_for_delivery_at
        end,
        delivered_at = case
            when v_status = 'delivered' then least(t.delivered_at, v_occurred)
            else t.delivered_at
        end,
        completed_at = case
            when v_status = 'completed' then least(t.completed_at, v_occurred)
            else t.completed_at
        end,
        cancelled_at = case
            when v_status = 'cancelled' then least(t.cancelled_at, v_occurred)
            else t.cancelled_at
        end,
        failed_at = case
            when v_status = 'failed' then least(t.failed_at, v_occurred) else t.failed_at
        end,
        -- The event's ids fill gaps, unless another tracking row holds them: a Lifefile
        -- order belongs to one prescription, and a copied id would make its events ambiguous.
        external_order_id = coalesce(
            t.external_order_id,
            case
                when not exists (
                    select from public.prescription_tracking as o
                    where o.external_order_id = v_fields.order_id and o.id <> t.id
                ) then v_fields.order_id
            end
        ),
        rx_number = coalesce(
            t.rx_number,
            case
                when not exists (
                    select from public.prescription_tracking as o
                    where
                        o.rx_number = v_fields.rx_number
                        and o.pharmacy_id is not distinct from t.pharmacy_id
                        and o.id <> t.id
                ) then v_fields.rx_number
            end
        ),
        medication_name = coalesce(t.medication_name, v_fields.medication_name),
        quantity = coalesce(t.quantity, v_fields.quantity),
        tracking_number = v_tracking.tracking_number,
        carrier = v_tracking.carrier,
        estimated_delivery = v_tracking.estimated_delivery,
        tracking_url = v_tracking.tracking_url,
        last_event_at = greatest(t.last_event_at, v_occurred)
    where t.id = v_tracking.id;

    insert into public.prescription_status_events (
        ticket_id, tracking_id, webhook_event_id, status, previous_status, external_status,
        external_previous_status, occurred_at, received_at, source, applied, note, details
    )
    values (
        v_ticket.id, v_tracking.id, p_event_id, v_status, v_tracking.current_status,
        v_fields.external_status, v_fields.previous_status, v_occurred, v_event.received_at,
        'lifefile', v_applied, v_note,
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'tracking_number', v_fields.tracking_number,
            'carrier', v_fields.carrier,
            'tracking_url', v_fields.tracking_url,
            'estimated_delivery', v_fields.estimated_delivery,
            'order_id', v_fields.order_id,
            'rx_number', v_fields.rx_number
        ))
    );

    update private.lifefile_webhook_events
    set
        status = 'processed',
        attempts = attempts + 1,
        next_attempt_at = null,
        processed_at = pg_catalog.now(),
        last_error = null,
        ticket_id = v_ticket.id
    where id = p_event_id;
    return 'processed';
end
$fn$;

-- process_lifefile_event, with any unexpected error caught: the event becomes 'failed' with the
-- error in last_error (an operator fixes the cause, then replays it), and the caller's
-- transaction goes on. Returns the event's resulting status.
create or replace function private.try_process_lifefile_event(p_event_id uuid)
returns text
language plpgsql
set search_path = ''
as $fn$
declare
    v_error text;
begin
    return private.process_lifefile_event(p_event_id);
exception when others then
    get stacked diagnostics v_error = message_text;
    update private.lifefile_webhook_events
    set
        status = 'failed',
        attempts = attempts + 1,
        next_attempt_at = null,
        last_error = pg_catalog.format('processing failed (%s): %s', sqlstate, v_error)
    where id = p_event_id and status <> 'processed';
    return 'failed';
end
$fn$;

-- The worker's job: processes up to p_limit due events (pending, and unmatched ones whose next
-- attempt is due) in arrival order, in the caller's transaction. Returns how many it processed.
-- Several workers share the queue: each skips the events another has locked (skip locked), and
-- none takes an event while an earlier due event of the same order (order_key) is still
-- waiting — in its snapshot, an event another worker holds is still waiting, so the events of
-- one order are processed one after the other, in arrival order, whoever processes them. An
-- event held back by one this call processed itself is taken in the next round of the same call.
-- The transaction commits without waiting for its WAL flush: the inbox rows were committed
-- durably when they were received, so a crash can only lose the results of the last moments'
-- processing, whose events are then still pending and are processed again (processing is
-- idempotent) — and each worker's small batches no longer wait on the disk one after another.
create or replace function private.process_lifefile_events(p_limit integer default 100)
returns integer
language plpgsql
set search_path = ''
as $fn$
declare
    v_id uuid;
    v_count integer := 0;
    v_round integer;
begin
    perform pg_catalog.set_config('synchronous_commit', 'off', true);
    loop
        v_round := 0;
        for v_id in
            select e.id
            from private.lifefile_webhook_events as e
            where
                (
                    e.status = 'pending'
                    or (e.status = 'unmatched' and e.next_attempt_at <= pg_catalog.now())
                )
                and not exists (
                    select
                    from private.lifefile_webhook_events as earlier
                    where
                        earlier.order_key = e.order_key
                        and earlier.seq < e.seq
                        and (
                            earlier.status = 'pending'
                            or (
                                earlier.status = 'unmatched'
                                and earlier.next_attempt_at <= pg_catalog.now()
                            )
                        )
                )
            order by e.seq
            limit p_limit - v_count
            for update of e skip locked
        loop
            perform private.try_process_lifefile_event(v_id);
            v_round := v_round + 1;
        end loop;
        v_count := v_count + v_round;
        exit when v_round = 0 or v_count >= p_limit;
    end loop;
    return v_count;
end
$fn$;

-- Operators: process one event again now (after adding a mapping, linking a prescription or
-- fixing a failure). Takes the event id; returns its resulting status. A processed event stays
-- processed (no second effect). Raises P0002 for an unknown id and 22023 for an invalid event.
create or replace function private.replay_lifefile_event(p_event_id uuid)
returns text
language plpgsql
set search_path = ''
as $fn$
declare
    v_status text;
begin
    select e.status into v_status
    from private.lifefile_webhook_events as e
    where e.id = p_event_id
    for update;
    if not found then
        raise exception 'no Lifefile webhook event %', p_event_id
            using errcode = 'P0002', hint = 'List events with `carehub webhooks list`.';
    end if;
    if v_status = 'invalid' then
        raise exception 'Lifefile webhook event % is invalid and cannot be replayed', p_event_id
            using errcode = '22023',
            hint = 'Its body is not a Lifefile event (see `carehub webhooks show`); '
            || 'ask Lifefile to send it again.';
    end if;
    if v_status <> 'processed' then
        update private.lifefile_webhook_events
        set status = 'pending', next_attempt_at = null
        where id = p_event_id;
    end if;
    return private.try_process_lifefile_event(p_event_id);
end
$fn$;

-- Operators: replay every event with status p_status ('unmatched', 'unmapped' or 'failed'), in
-- arrival order. Returns each event's id and resulting status.
create or replace function private.replay_lifefile_events(p_status text)
returns table (event_id uuid, event_status text)
language plpgsql
set search_path = ''
as $fn$
begin
    if p_status is null or p_status not in ('unmatched', 'unmapped', 'failed') then
        raise exception 'cannot replay events with status %', coalesce(p_status, 'null')
            using errcode = '22023', hint = 'Replay unmatched, unmapped or failed events.';
    end if;
    for event_id in
        select e.id
        from private.lifefile_webhook_events as e
        where e.status = p_status
        order by e.seq
        for update skip locked
    loop
        event_status := private.replay_lifefile_event(event_id);
        return next;
    end loop;
end
$fn$;

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

revoke execute on function private.lifefile_retry_delay(integer) from public;
revoke execute on function private.carrier_tracking_url(text, text) from public;
revoke execute on function private.match_lifefile_tracking(text, text, text) from public;
revoke execute on function private.process_lifefile_event(uuid) from public;
revoke execute on function private.try_process_lifefile_event(uuid) from public;
revoke execute on function private.process_lifefile_events(integer) from public;
revoke execute on function private.replay_lifefile_event(uuid) from public;
revoke execute on function private.replay_lifefile_events(text) from public;
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
