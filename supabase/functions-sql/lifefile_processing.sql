-- Lifefile processing: matching an inbox event to its prescription tracking row and
-- processing it into tracking, status history and the ticket (with retry backoff).

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

revoke execute on function private.lifefile_retry_delay(integer) from public;
revoke execute on function private.carrier_tracking_url(text, text) from public;
revoke execute on function private.match_lifefile_tracking(text, text, text) from public;
revoke execute on function private.process_lifefile_event(uuid) from public;
revoke execute on function private.try_process_lifefile_event(uuid) from public;
