-- Named queries of the legacy-thread backfill (app/backfill): a batch is one call of
-- private.backfill_threads_batch; the rest is bookkeeping of runs and the report.

-- name: try_lock_backfill
-- One backfill at a time per database (session-level; released when the connection ends).
select pg_try_advisory_lock(pg_catalog.hashtextextended('carehub_backfill_threads', 0));

-- name: unlock_backfill
-- Release the one-backfill lock before the connection closes (a closing backend lets it go
-- only a moment later, and a run started right after would find it taken).
select pg_advisory_unlock(pg_catalog.hashtextextended('carehub_backfill_threads', 0));

-- name: check_backfill_installed
-- Whether the backfill's functions exist (the migrations have been run).
select
    to_regprocedure(
        'private.backfill_threads_batch(bigint, uuid, integer, timestamp with time zone)'
    ) is not null as installed;

-- name: running_run
-- The unfinished run to resume, if any.
select
    id,
    phase,
    last_thread_id,
    started_at,
    threads_seen,
    tickets_created,
    threads_linked,
    threads_skipped,
    warnings,
    batches
from private.backfill_runs
where status = 'running';

-- name: start_run
-- A new run.
insert into private.backfill_runs default values
returning
    id,
    phase,
    last_thread_id,
    started_at,
    threads_seen,
    tickets_created,
    threads_linked,
    threads_skipped,
    warnings,
    batches;

-- name: run_batch
-- One batch: plan and apply the next %(batch_size)s threads after %(after_id)s.
select
    b.last_thread_id,
    b.threads_seen,
    b.tickets_created,
    b.threads_linked,
    b.threads_skipped,
    b.warnings
from private.backfill_threads_batch(
    %(run_id)s, %(after_id)s, %(batch_size)s, %(since_at)s
) as b;

-- name: start_catch_up
-- The scan is over: look again at threads created since the run started.
update private.backfill_runs
set phase = 'catch_up', last_thread_id = null
where id = %(run_id)s;

-- name: restart_catch_up
-- Another pass over the threads created since the run started.
update private.backfill_runs
set last_thread_id = null
where id = %(run_id)s;

-- name: finish_run
-- Nothing mappable is left without a ticket.
update private.backfill_runs
set status = 'finished', finished_at = clock_timestamp()
where id = %(run_id)s;

-- name: threads_left
-- Threads without a ticket, for the progress bar (legacy threads still to look at).
select count(*) as threads
from public.chat_threads
where ticket_id is null;

-- name: next_thread_ids
-- Dry run: the next %(batch_size)s thread ids without a ticket after %(after_id)s.
select id
from public.chat_threads
where id > %(after_id)s and ticket_id is null
order by id
limit %(batch_size)s;

-- name: plan_threads
-- Dry run: what a batch would do with these threads (reads only).
select
    p.thread_id,
    p.order_id,
    p.order_type,
    p.action,
    p.reason,
    p.detail,
    p.warnings
from private.backfill_thread_plan(%(thread_ids)s) as p;

-- name: report_rows
-- The report: every thread without a ticket and its reason, every migrated one with a warning.
select
    o.thread_id,
    o.order_id,
    o.order_type,
    o.reason,
    o.detail
from private.backfill_thread_outcomes as o
where
    o.outcome = 'warning'
    or (
        not exists (
            select from public.chat_threads as th
            where th.id = o.thread_id and th.ticket_id is not null
        )
        and not exists (
            select from public.healthcare_tickets as t
            where t.legacy_thread_id = o.thread_id
        )
    )
order by o.outcome asc, o.reason asc, o.thread_id asc;

-- name: run_reasons
-- This run's outcomes by reason (the summary).
select
    outcome,
    reason,
    count(*) as threads
from private.backfill_thread_outcomes
where run_id = %(run_id)s
group by outcome, reason
order by outcome asc, threads desc, reason asc;
