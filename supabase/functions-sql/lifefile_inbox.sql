-- Lifefile webhook inbox: reading events of either payload shape, their dedupe key, and
-- storing each delivery in the inbox.

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
