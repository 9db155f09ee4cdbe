-- Fulfilment facts kept per statement instead of per row: the row triggers on
-- prescription_tracking (track_fulfillment_facts, track_fulfillment_facts_on_update) cost about
-- 0.5 ms a row, most of it planning the SQL-language helpers again on every call, so a bulk
-- statement (the legacy-thread backfill writes ~1000 tracking rows in one) spent most of its
-- time there. Three statement triggers with transition tables hand their rows to one set-based
-- PL/pgSQL helper (mark_fulfillment_days_dirty is PL/pgSQL too, so its plan is kept): the same
-- facts and the same dirty periods, each period now marked once per statement rather than once
-- per row. Functions and triggers as in
-- supabase/functions-sql/analytics_facts.sql.

-- Marks dirty the day, week and month periods of each (pharmacy, local day) pair. The dirty
-- list is a log (no unique key): a marking takes no lock, so concurrent event processing
-- never waits or deadlocks on it, and a marking committed after a refresh read its rows is
-- simply picked up by the next refresh.
create or replace function private.mark_fulfillment_days_dirty(
    p_pharmacy_ids uuid[], p_days date[]
)
returns void
language plpgsql
set search_path = ''
as $fn$
begin
    -- PL/pgSQL: the statement's plan is kept for the session, not made at every call (the
    -- fact triggers call this for every statement that changes tracking).
    insert into private.fulfillment_dirty_periods (pharmacy_id, grain, period_start)
    select distinct d.pharmacy_id, g.grain, private.fulfillment_period_start(g.grain, d.day)
    from rows from (pg_catalog.unnest(p_pharmacy_ids), pg_catalog.unnest(p_days))
        as d (pharmacy_id, day)
    cross join (values ('day'), ('week'), ('month')) as g (grain)
    where d.pharmacy_id is not null and d.day is not null;
end
$fn$;

-- Replaces the facts of a set of tracking rows: removes those of the rows whose ids are
-- p_removed, adds those of the rows p_added (the ones with a pharmacy), and marks dirty, once
-- each, the day, week and month of every (pharmacy, local day) their old or new facts fall in.
-- The statement triggers below pass it every row of a statement, so a bulk insert or update
-- pays once, not once per row.
create or replace function private.replace_fulfillment_facts(
    p_removed uuid[], p_added public.prescription_tracking[]
)
returns void
language plpgsql
set search_path = ''
as $fn$
declare
    v_pharmacy_ids uuid[];
    v_days date[];
begin
    -- Two statements, removal first: the new facts reuse the old ones' keys, and the parts of
    -- one statement run in no set order.
    with gone as (
        delete from private.fulfillment_facts as f
        where f.tracking_id = any(p_removed)
        returning f.pharmacy_id, f.day
    )
    select pg_catalog.array_agg(gone.pharmacy_id), pg_catalog.array_agg(gone.day)
    into v_pharmacy_ids, v_days
    from gone;

    with added as (
        insert into private.fulfillment_facts
        select r.*
        from pg_catalog.unnest(p_added) as t
        join public.providers as p on p.id = t.pharmacy_id
        cross join lateral private.fulfillment_fact_rows(t, p.timezone) as r
        returning pharmacy_id, day
    )
    select
        coalesce(v_pharmacy_ids, '{}'::uuid[]) || pg_catalog.array_agg(added.pharmacy_id),
        coalesce(v_days, '{}'::date[]) || pg_catalog.array_agg(added.day)
    into v_pharmacy_ids, v_days
    from added;

    perform private.mark_fulfillment_days_dirty(v_pharmacy_ids, v_days);
end
$fn$;

-- Trigger (prescription_tracking, after insert, once per statement): adds the facts of the
-- new rows. Security definer: whoever moves a ticket may not write the analytics tables.
create or replace function private.track_fulfillment_facts_on_insert()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.replace_fulfillment_facts(
        '{}', array(select n::public.prescription_tracking from new_rows as n)
    );
    return null;
end
$fn$;

-- Trigger (prescription_tracking, after update, once per statement): replaces the facts of the
-- rows whose analytics columns changed (what private.fulfillment_fact_rows reads; the
-- durations are generated from them); an update of anything else writes and marks nothing.
-- Security definer, as above.
create or replace function private.track_fulfillment_facts_on_update()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.replace_fulfillment_facts(
        pg_catalog.array_agg(o.id), pg_catalog.array_agg(n::public.prescription_tracking)
    )
    from old_rows as o
    join new_rows as n on n.id = o.id
    where (
        o.pharmacy_id, o.sent_at, o.received_at, o.processing_at, o.shipped_at,
        o.delivered_at, o.completed_at, o.cancelled_at, o.failed_at, o.estimated_delivery
    ) is distinct from (
        n.pharmacy_id, n.sent_at, n.received_at, n.processing_at, n.shipped_at,
        n.delivered_at, n.completed_at, n.cancelled_at, n.failed_at, n.estimated_delivery
    )
    having pg_catalog.count(*) > 0;
    return null;
end
$fn$;

-- Trigger (prescription_tracking, after delete, once per statement): removes the facts of the
-- deleted rows (they have no foreign key to them). Security definer, as above.
create or replace function private.track_fulfillment_facts_on_delete()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.replace_fulfillment_facts(array(select o.id from old_rows as o), '{}');
    return null;
end
$fn$;

revoke execute on function private.replace_fulfillment_facts(
    uuid[], public.prescription_tracking[]
) from public;
revoke execute on function private.track_fulfillment_facts_on_insert() from public;
revoke execute on function private.track_fulfillment_facts_on_update() from public;
revoke execute on function private.track_fulfillment_facts_on_delete() from public;

-- Per statement, with the statement's rows as transition tables: a bulk insert or update (a
-- backfill) costs one pass over its rows, not one trigger call per row. They replaced the row
-- triggers track_fulfillment_facts (dropped here) and track_fulfillment_facts_on_update.
drop trigger if exists track_fulfillment_facts on public.prescription_tracking;

drop trigger if exists track_fulfillment_facts_on_insert on public.prescription_tracking;
create trigger track_fulfillment_facts_on_insert
after insert on public.prescription_tracking
referencing new table as new_rows
for each statement execute function private.track_fulfillment_facts_on_insert();

drop trigger if exists track_fulfillment_facts_on_update on public.prescription_tracking;
create trigger track_fulfillment_facts_on_update
after update on public.prescription_tracking
referencing old table as old_rows new table as new_rows
for each statement execute function private.track_fulfillment_facts_on_update();

drop trigger if exists track_fulfillment_facts_on_delete on public.prescription_tracking;
create trigger track_fulfillment_facts_on_delete
after delete on public.prescription_tracking
referencing old table as old_rows
for each statement execute function private.track_fulfillment_facts_on_delete();

-- The row triggers' function, unused now.
drop function private.track_fulfillment_facts();
