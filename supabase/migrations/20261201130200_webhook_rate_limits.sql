-- Webhook rate limits shared by every server process (access issue, rule 13): one token bucket
-- per provider, kind of request (signed or not) and client address. The definitions below are
-- supabase/functions-sql/webhook_rate_limits.sql and supabase/policies/webhook_rate_buckets.sql
-- as of this migration.

create table private.webhook_rate_buckets (
    bucket text primary key,
    tokens double precision not null,
    refilled_at timestamptz not null
);

comment on table private.webhook_rate_buckets is
'Token buckets of the webhook endpoints'' rate limits, shared by every server process.';

-- Rows are updated on every request: leave room on each page for HOT updates.
alter table private.webhook_rate_buckets set (fillfactor = 50);

-- Rate limits of the webhook endpoints, shared by every server process: token buckets in
-- private.webhook_rate_buckets (created by migration 20261201130200_webhook_rate_limits).

-- Takes one token from bucket p_bucket (say 'lifefile:signed:203.0.113.9'), which holds at
-- most p_capacity tokens and refills at p_per_second tokens a second. Returns whether the
-- request may go on and, when not, how many seconds until the next token; a refusal takes
-- nothing. The bucket's row lock makes concurrent requests of every process count exactly. Its
-- transaction commits without waiting for the WAL flush: a token lost in a crash costs
-- nothing, and the lock is then held for microseconds rather than a disk flush when one client
-- sends many requests at once.
create or replace function private.take_webhook_token(
    p_bucket text,
    p_capacity double precision,
    p_per_second double precision,
    out allowed boolean,
    out retry_after double precision
)
language plpgsql
set search_path = ''
as $fn$
declare
    v_tokens double precision;
    v_refilled_at timestamptz;
    v_now timestamptz := pg_catalog.clock_timestamp();
begin
    perform pg_catalog.set_config('synchronous_commit', 'off', true);
    select b.tokens, b.refilled_at into v_tokens, v_refilled_at
    from private.webhook_rate_buckets as b
    where b.bucket = p_bucket
    for update;
    if not found then
        insert into private.webhook_rate_buckets as b (bucket, tokens, refilled_at)
        values (p_bucket, p_capacity, v_now)
        on conflict (bucket) do nothing;
        select b.tokens, b.refilled_at into v_tokens, v_refilled_at
        from private.webhook_rate_buckets as b
        where b.bucket = p_bucket
        for update;
    end if;
    v_tokens := least(
        p_capacity,
        v_tokens
        + greatest(0, pg_catalog.date_part('epoch', v_now - v_refilled_at)) * p_per_second
    );
    allowed := v_tokens >= 1;
    if allowed then
        v_tokens := v_tokens - 1;
    end if;
    retry_after := case when allowed then 0 else (1 - v_tokens) / p_per_second end;
    update private.webhook_rate_buckets
    set tokens = v_tokens, refilled_at = v_now
    where bucket = p_bucket;
end
$fn$;

-- The worker's sweep: forgets buckets untouched for an hour (full again by then at every rate
-- the settings allow, so forgetting one changes nothing). Returns how many it forgot.
create or replace function private.prune_webhook_rate_buckets()
returns integer
language sql
set search_path = ''
as $fn$
    with forgotten as (
        delete from private.webhook_rate_buckets as b
        where b.refilled_at < pg_catalog.now() - interval '1 hour'
        returning 1
    )
    select pg_catalog.count(*)::integer from forgotten
$fn$;

revoke execute on function private.take_webhook_token(text, double precision, double precision)
from public;
revoke execute on function private.prune_webhook_rate_buckets() from public;
-- private.webhook_rate_buckets: the webhook endpoints' shared rate limits. Not exposed: only
-- the service and the worker (system sessions) use it.

revoke all on private.webhook_rate_buckets from public, anon, authenticated, service_role;
