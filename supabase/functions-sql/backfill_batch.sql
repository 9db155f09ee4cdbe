-- Backfill of legacy chat threads: the batch that applies backfill_thread_plan's decisions in
-- one short transaction, and the trigger that keeps a backfilled thread's updated_at.

-- backfill_threads_batch(p_run_id, p_after, p_limit, p_catch_up_since) returns one row
-- One batch of a run: the next p_limit legacy threads after p_after (by id) that have no ticket,
-- planned by private.backfill_thread_plan and applied, all in the caller's transaction (one
-- short transaction per batch; the script sets lock_timeout and statement_timeout). With
-- p_catch_up_since, only threads created since then are taken (threads created while the run
-- went). Returns the last thread id looked at (null: nothing left in this range) and counts.
-- Records the batch and the run's progress, so a stopped run resumes after its last committed
-- batch. Raises 23505 when a live ticket for the same appointment and pharmacy was committed
-- between the plan and the insert: the script retries the batch, which then links to it.
create or replace function private.backfill_threads_batch(
    p_run_id bigint,
    p_after uuid,
    p_limit integer,
    p_catch_up_since timestamptz default null,
    out last_thread_id uuid,
    out threads_seen integer,
    out tickets_created integer,
    out threads_linked integer,
    out threads_skipped integer,
    out warnings integer
)
language plpgsql
set search_path = ''
as $fn$
declare
    v_ids uuid[];
    v_plan private.backfill_decision[];
    v_created_threads uuid[];
    v_event_ids uuid[];
    v_event_tickets uuid[];
    v_before_threads uuid[];
    v_before_profiles uuid[];
    v_source text := pg_catalog.current_setting('app.source', true);
begin
    -- The range: keyset on the primary key, threads of tickets left out (they are done).
    select array_agg(x.id order by x.id) into v_ids
    from (
        select th.id from public.chat_threads as th
        where
            th.id > coalesce(p_after, '00000000-0000-0000-0000-000000000000'::uuid)
            and th.ticket_id is null
            and (p_catch_up_since is null or th.created_at >= p_catch_up_since)
        order by th.id
        limit p_limit
    ) as x;
    last_thread_id := v_ids[pg_catalog.cardinality(v_ids)];
    threads_seen := coalesce(pg_catalog.cardinality(v_ids), 0);
    tickets_created := 0;
    threads_linked := 0;
    threads_skipped := 0;
    warnings := 0;
    if threads_seen = 0 then
        return;
    end if;

    -- Triggers see a backfill: a 'backfilled' timeline row, no notification, no delivery.
    perform pg_catalog.set_config('app.source', 'backfill', true);

    v_plan := array(select p from private.backfill_thread_plan(v_ids) as p);

    -- get_or_create_prescription_ticket's lock for each appointment and pharmacy the batch
    -- writes a ticket for, taken in one order (no deadlock between batches), before any row is
    -- written: a doctor's concurrent call waits for this batch, then finds its ticket.
    perform pg_catalog.pg_advisory_xact_lock(k.key)
    from (
        select distinct pg_catalog.hashtextextended(
            'prescription_ticket:' || p.appointment_id::text || ':'
            || p.secondary_provider_id::text, 0
        ) as key
        from pg_catalog.unnest(v_plan) as p
        where p.action in ('create', 'link') and p.appointment_id is not null
        order by 1
    ) as k;

    v_created_threads := array(
        select p.thread_id from pg_catalog.unnest(v_plan) as p where p.action = 'create'
    );
    select
        coalesce(pg_catalog.array_agg(e.id), '{}'::uuid[]),
        coalesce(pg_catalog.array_agg(p.ticket_id), '{}'::uuid[])
    into v_event_ids, v_event_tickets
    from pg_catalog.unnest(v_plan) as p
    cross join lateral pg_catalog.unnest(p.event_ids) as e (id)
    where p.action = 'create';

    -- The prescription was sent when it was written, not when the backfill ran (set before the
    -- ticket, whose trigger would stamp it with the backfill's clock).
    update public.prescriptions as rx
    set sent_at = p.sent_at
    from pg_catalog.unnest(v_plan) as p
    where p.action = 'create' and p.prescription_id = rx.id and rx.sent_at is null;

    -- The inbox events the tickets' history comes from are this batch's to apply: marked
    -- processed before the tracking rows appear, so no worker is woken for them.
    update private.lifefile_webhook_events as e
    set
        status = 'processed',
        attempts = e.attempts + 1,
        next_attempt_at = null,
        processed_at = pg_catalog.now(),
        last_error = null
    where e.id = any(v_event_ids);

    -- The legacy members, before the tickets' triggers make them follow the parties.
    select array_agg(m.thread_id), array_agg(m.profile_id)
    into v_before_threads, v_before_profiles
    from public.chat_thread_members as m
    where m.thread_id = any(v_created_threads);

    -- Each ticket takes its legacy thread (create_ticket_threads, under app.source =
    -- 'backfill'): the thread keeps order_id, metadata and messages, gets the ticket's keys
    -- (the values they replace are kept beside them) and its members follow the ticket's
    -- parties; authors who are not parties keep their messages.
    insert into public.healthcare_tickets (
        id, ticket_type, status, patient_id, primary_provider_id, secondary_provider_id,
        appointment_id, prescription_id, title, created_by, created_at, updated_at, sent_at,
        closed_at, legacy_thread_id, metadata
    )
    select
        p.ticket_id, 'prescription', p.status, p.patient_id, p.primary_provider_id,
        p.secondary_provider_id, p.appointment_id, p.prescription_id, p.title,
        p.created_by, p.created_at, p.updated_at, p.sent_at, p.closed_at, p.thread_id,
        pg_catalog.jsonb_build_object('backfilled_from_thread', p.thread_id)
    from pg_catalog.unnest(v_plan) as p
    where p.action = 'create';
    get diagnostics tickets_created = row_count;

    -- Legacy members the sync removed, and whether each wrote in the thread (a probe per
    -- removed member: these are few, the tables large).
    with removed as (
        select b.thread_id, b.profile_id
        from rows from (
            pg_catalog.unnest(v_before_threads), pg_catalog.unnest(v_before_profiles)
        ) as b (thread_id, profile_id)
        except
        select m.thread_id, m.profile_id
        from public.chat_thread_members as m
        where m.thread_id = any(v_created_threads)
    )

    insert into private.backfill_thread_outcomes (
        thread_id, outcome, reason, detail, order_id, order_type, ticket_id, run_id
    )
    select
        r.thread_id, 'warning', 'members removed',
        pg_catalog.string_agg(
            r.profile_id::text || case when w.wrote then ' (wrote messages)' else '' end,
            ', ' order by r.profile_id
        ),
        p.order_id, p.order_type, p.ticket_id, p_run_id
    from removed as r
    inner join pg_catalog.unnest(v_plan) as p on r.thread_id = p.thread_id
    left join lateral (
        select true as wrote
        from public.chat_messages as msg
        where msg.thread_id = r.thread_id and msg.sender_id = r.profile_id
        limit 1
    ) as w on true
    group by r.thread_id, p.order_id, p.order_type, p.ticket_id
    on conflict (thread_id, reason) do update
        set detail = excluded.detail, ticket_id = excluded.ticket_id, run_id = excluded.run_id,
        recorded_at = pg_catalog.clock_timestamp();

    -- Tracking keeps the real dates: sent when written (the ticket's sent_at, which the trigger
    -- took), each status when Lifefile said.
    update public.prescription_tracking as t
    set
        received_at = h.received_at,
        processing_at = h.processing_at,
        ready_at = h.ready_at,
        shipped_at = h.shipped_at,
        out_for_delivery_at = h.out_for_delivery_at,
        delivered_at = h.delivered_at,
        completed_at = h.completed_at,
        cancelled_at = h.cancelled_at,
        failed_at = h.failed_at,
        current_status = p.status,
        last_event_at = h.last_event_at,
        tracking_number = coalesce(h.tracking_number, t.tracking_number),
        carrier = coalesce(h.carrier, t.carrier),
        tracking_url = coalesce(
            h.tracking_url, t.tracking_url,
            private.carrier_tracking_url(coalesce(h.carrier, t.carrier), h.tracking_number)
        ),
        estimated_delivery = coalesce(h.estimated_delivery, t.estimated_delivery)
    from pg_catalog.unnest(v_plan) as p
    inner join (
        select
            et.ticket_id,
            min(x.occurred_at) filter (where x.status = 'received') as received_at,
            min(x.occurred_at) filter (where x.status = 'processing') as processing_at,
            min(x.occurred_at) filter (where x.status = 'ready') as ready_at,
            min(x.occurred_at) filter (where x.status = 'shipped') as shipped_at,
            min(x.occurred_at) filter (where x.status = 'out_for_delivery')
                as out_for_delivery_at,
            min(x.occurred_at) filter (where x.status = 'delivered') as delivered_at,
            min(x.occurred_at) filter (where x.status = 'completed') as completed_at,
            min(x.occurred_at) filter (where x.status = 'cancelled') as cancelled_at,
            min(x.occurred_at) filter (where x.status = 'failed') as failed_at,
            max(x.occurred_at) as last_event_at,
            (array_agg(x.tracking_number order by x.occurred_at desc)
                filter (where x.tracking_number is not null))[1] as tracking_number,
            (array_agg(x.carrier order by x.occurred_at desc)
                filter (where x.carrier is not null))[1] as carrier,
            (array_agg(x.tracking_url order by x.occurred_at desc)
                filter (where x.tracking_url is not null))[1] as tracking_url,
            (array_agg(x.estimated_delivery order by x.occurred_at desc)
                filter (where x.estimated_delivery is not null))[1] as estimated_delivery
        -- The whole batch's history read at once, each event to its ticket.
        from private.backfill_lifefile_history(v_event_ids) as x
        inner join rows from (
            pg_catalog.unnest(v_event_ids), pg_catalog.unnest(v_event_tickets)
        ) as et (event_id, ticket_id) on x.event_id = et.event_id
        group by et.ticket_id
    ) as h on p.ticket_id = h.ticket_id
    where p.action = 'create' and t.ticket_id = h.ticket_id;

    -- The history itself, one row per event, as processing would have written it.
    insert into public.prescription_status_events (
        ticket_id, tracking_id, webhook_event_id, status, previous_status, external_status,
        external_previous_status, occurred_at, received_at, source, applied, note, details
    )
    select
        et.ticket_id, t.id, x.event_id, x.status,
        pg_catalog.lag(x.status, 1, 'sent') over (
            partition by et.ticket_id order by x.occurred_at, x.seq
        ),
        x.external_status, x.previous_status, x.occurred_at, x.received_at, 'backfill', true,
        'applied by the backfill when the legacy thread got its ticket',
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'tracking_number', x.tracking_number,
            'carrier', x.carrier,
            'tracking_url', x.tracking_url,
            'estimated_delivery', x.estimated_delivery,
            'order_id', x.order_id,
            'rx_number', x.rx_number
        ))
    from private.backfill_lifefile_history(v_event_ids) as x
    inner join rows from (
        pg_catalog.unnest(v_event_ids), pg_catalog.unnest(v_event_tickets)
    ) as et (event_id, ticket_id) on x.event_id = et.event_id
    inner join public.prescription_tracking as t on et.ticket_id = t.ticket_id;

    update private.lifefile_webhook_events as e
    set ticket_id = x.ticket_id
    from rows from (
        pg_catalog.unnest(v_event_ids), pg_catalog.unnest(v_event_tickets)
    ) as x (id, ticket_id)
    where e.id = x.id;

    -- A live ticket of the same appointment and pharmacy keeps its own thread and records the
    -- legacy one; its parties read it through the thread and message policies.
    update public.healthcare_tickets as t
    set legacy_thread_id = p.thread_id
    from pg_catalog.unnest(v_plan) as p
    where p.action = 'link' and t.id = p.ticket_id and t.legacy_thread_id is null;
    get diagnostics threads_linked = row_count;

    -- The report: a thread's earlier outcomes give way to this batch's.
    delete from private.backfill_thread_outcomes as o
    using pg_catalog.unnest(v_plan) as p
    where o.thread_id = p.thread_id and o.reason <> 'members removed';

    insert into private.backfill_thread_outcomes (
        thread_id, outcome, reason, detail, order_id, order_type, ticket_id, run_id
    )
    select p.thread_id, 'skipped', p.reason, p.detail, p.order_id, p.order_type, null, p_run_id
    from pg_catalog.unnest(v_plan) as p
    where p.action = 'skip'
    union all
    select
        p.thread_id, 'warning', w.value ->> 'reason', w.value ->> 'detail', p.order_id,
        p.order_type, p.ticket_id, p_run_id
    from pg_catalog.unnest(v_plan) as p
    cross join lateral pg_catalog.jsonb_array_elements(p.warnings) as w
    where p.action <> 'skip';

    select
        (count(*) filter (where p.action = 'skip'))::integer,
        coalesce(
            sum(pg_catalog.jsonb_array_length(p.warnings)) filter (where p.action <> 'skip'), 0
        )::integer
    into threads_skipped, warnings
    from pg_catalog.unnest(v_plan) as p;

    insert into private.backfill_batches (
        run_id, phase, from_thread_id, to_thread_id, threads_seen, tickets_created,
        threads_linked, threads_skipped, warnings
    )
    values (
        p_run_id, case when p_catch_up_since is null then 'scan' else 'catch_up' end,
        v_ids[1], last_thread_id, threads_seen, tickets_created, threads_linked,
        threads_skipped, warnings
    );
    update private.backfill_runs as r
    set
        last_thread_id = backfill_threads_batch.last_thread_id,
        threads_seen = r.threads_seen + backfill_threads_batch.threads_seen,
        tickets_created = r.tickets_created + backfill_threads_batch.tickets_created,
        threads_linked = r.threads_linked + backfill_threads_batch.threads_linked,
        threads_skipped = r.threads_skipped + backfill_threads_batch.threads_skipped,
        warnings = r.warnings + backfill_threads_batch.warnings,
        batches = r.batches + 1
    where r.id = p_run_id;

    perform pg_catalog.set_config('app.source', coalesce(v_source, ''), true);
end
$fn$;

-- Trigger (chat_threads, before update, under app.source = 'backfill'; fires after
-- set_updated_at, by name): linking a legacy thread to its ticket is not news, so the thread
-- keeps its place in the inbox (updated_at stays that of its last message).
create or replace function private.keep_backfilled_thread_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    new.updated_at := old.updated_at;
    return new;
end
$fn$;

revoke execute on function private.backfill_threads_batch(
    bigint, uuid, integer, timestamptz
) from public;
revoke execute on function private.keep_backfilled_thread_updated_at() from public;

drop trigger if exists unbump_backfilled_thread on public.chat_threads;
create trigger unbump_backfilled_thread
before update on public.chat_threads
for each row
when (pg_catalog.current_setting('app.source', true) = 'backfill')
execute function private.keep_backfilled_thread_updated_at();
