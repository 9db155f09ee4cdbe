-- Backfill of legacy chat threads (issue 11): where a run keeps its progress (so a stopped run
-- resumes where it stopped), one row per batch, and what happened to each thread that was not
-- migrated or was migrated with a warning (the report). Private: no API role reads them.
-- The functions are in functions-sql/backfill.sql (next migration).

create table private.backfill_runs (
    id bigint generated always as identity primary key,
    started_at timestamptz not null default clock_timestamp(),
    finished_at timestamptz,
    -- Keyset cursor over chat_threads.id: the last thread the run has looked at.
    last_thread_id uuid,
    -- 'scan' walks every thread once; 'catch_up' then looks again at threads created while the
    -- run was going (their random ids may fall behind the cursor).
    phase text not null default 'scan' check (phase in ('scan', 'catch_up')),
    status text not null default 'running' check (status in ('running', 'finished')),
    threads_seen bigint not null default 0,
    tickets_created bigint not null default 0,
    threads_linked bigint not null default 0,
    threads_skipped bigint not null default 0,
    warnings bigint not null default 0,
    batches integer not null default 0
);

comment on table private.backfill_runs is
'One row per run of scripts/migrate_threads_to_tickets.py; an unfinished one is resumed.';

-- At most one unfinished run: a second start resumes it instead of starting over.
create unique index backfill_runs_one_running_idx on private.backfill_runs ((true))
where status = 'running';

create table private.backfill_batches (
    id bigint generated always as identity primary key,
    run_id bigint not null references private.backfill_runs (id) on delete cascade,
    phase text not null,
    from_thread_id uuid,
    to_thread_id uuid,
    threads_seen integer not null,
    tickets_created integer not null,
    threads_linked integer not null,
    threads_skipped integer not null,
    warnings integer not null,
    finished_at timestamptz not null default clock_timestamp()
);

create index backfill_batches_run_id_idx on private.backfill_batches (run_id, id);

create table private.backfill_thread_outcomes (
    thread_id uuid not null,
    -- 'skipped' (the thread has no ticket) or 'warning' (it was migrated, with this caveat).
    outcome text not null check (outcome in ('skipped', 'warning')),
    reason text not null,
    detail text,
    order_id uuid,
    order_type text,
    ticket_id uuid,
    run_id bigint references private.backfill_runs (id) on delete set null,
    recorded_at timestamptz not null default clock_timestamp(),
    primary key (thread_id, reason)
);

comment on table private.backfill_thread_outcomes is
'The backfill report: each legacy thread not migrated (and why), each migrated with a warning.';

create index backfill_thread_outcomes_run_id_idx on private.backfill_thread_outcomes (run_id);

-- One decision of the backfill about one legacy thread (private.backfill_thread_plan).
create type private.backfill_decision as (
    thread_id uuid,
    order_id uuid,
    order_type text,
    -- 'create' a ticket, 'link' to an existing one (legacy_thread_id), or 'skip'.
    action text,
    reason text,
    detail text,
    -- [{"reason": ..., "detail": ...}] for a migrated thread.
    warnings jsonb,
    ticket_id uuid,
    patient_id uuid,
    primary_provider_id uuid,
    secondary_provider_id uuid,
    appointment_id uuid,
    prescription_id uuid,
    status text,
    title text,
    created_by uuid,
    created_at timestamptz,
    updated_at timestamptz,
    sent_at timestamptz,
    closed_at timestamptz,
    legacy_target_id text,
    legacy_prescription_id text,
    event_ids uuid[]  -- noqa: LT01
);

revoke all on private.backfill_runs from public, anon, authenticated, service_role;
revoke all on private.backfill_batches from public, anon, authenticated, service_role;
revoke all on private.backfill_thread_outcomes from public, anon, authenticated, service_role;
