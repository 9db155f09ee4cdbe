-- Lifefile queue: the worker's batches of due inbox events, and the operators' replays.

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

revoke execute on function private.process_lifefile_events(integer) from public;
revoke execute on function private.replay_lifefile_event(uuid) from public;
revoke execute on function private.replay_lifefile_events(text) from public;
