-- Fulfilment analytics: period bounds, the facts each tracking row contributes (in its pharmacy's
-- local dates), and dirty marking when tracking or a pharmacy's time zone changes (triggers).

-- The first day of the period of grain p_grain ('day', 'week' from Monday, 'month') holding
-- the local date p_day.
create or replace function private.fulfillment_period_start(p_grain text, p_day date)
returns date
language sql immutable
set search_path = ''
as $fn$
    select case p_grain
        when 'day' then p_day
        when 'week' then p_day - (pg_catalog.date_part('isodow', p_day)::integer - 1)
        when 'month' then pg_catalog.make_date(
            pg_catalog.date_part('year', p_day)::integer,
            pg_catalog.date_part('month', p_day)::integer,
            1
        )
    end
$fn$;

-- The first day after the period of grain p_grain that starts on p_start (dates, not
-- timestamps: a local day is a day whatever daylight saving does to its length).
create or replace function private.fulfillment_period_end(p_grain text, p_start date)
returns date
language sql immutable
set search_path = ''
as $fn$
    select case p_grain
        when 'day' then p_start + 1
        when 'week' then p_start + 7
        when 'month' then (p_start + '1 month'::interval)::date
    end
$fn$;

-- The analytics facts of one tracking row, each under the pharmacy-local date it counts under:
-- one volume fact per status reached (sent, received, shipped, delivered, picked_up,
-- cancelled, failed: the date of that event); for a prescription neither cancelled nor failed,
-- its stage times (processing, shipping, delivery: the date received), its total fulfilment
-- (sent → delivered or picked up: the date sent), its shipment lag in local days (the date
-- received) and its on-time outcome (delivered prescriptions and those still on their way
-- that have an estimate: the date received; on_time null = not delivered yet, late once
-- due_at has passed). A pickup has no on-time outcome: nobody promised to deliver it. At most
-- 13 facts (rows 8 tells the planner a handful, not the default 1,000 rows per call).
create or replace function private.fulfillment_fact_rows(
    p_tracking public.prescription_tracking, p_timezone text
)
returns setof private.fulfillment_facts
language sql stable
rows 8
set search_path = ''
as $fn$
    select p_tracking.id, f.kind, p_tracking.pharmacy_id, f.day, f.duration,
        f.shipped_after_days, f.on_time, f.due_at
    from (
        select
            (p_tracking.sent_at at time zone p_timezone)::date as sent_day,
            (p_tracking.received_at at time zone p_timezone)::date as received_day,
            (p_tracking.shipped_at at time zone p_timezone)::date as shipped_day,
            p_tracking.cancelled_at is null and p_tracking.failed_at is null as settled
    ) as d
    cross join lateral (
        values
            ('sent', d.sent_day, null::interval, null::integer, null::boolean, null::timestamptz),
            ('received', d.received_day, null, null, null, null),
            ('shipped', d.shipped_day, null, null, null, null),
            ('delivered', (p_tracking.delivered_at at time zone p_timezone)::date,
                null, null, null, null),
            ('picked_up', (p_tracking.completed_at at time zone p_timezone)::date,
                null, null, null, null),
            ('cancelled', (p_tracking.cancelled_at at time zone p_timezone)::date,
                null, null, null, null),
            ('failed', (p_tracking.failed_at at time zone p_timezone)::date,
                null, null, null, null),
            ('processing', case when d.settled and p_tracking.processing_time is not null
                then d.received_day end, p_tracking.processing_time, null, null, null),
            ('shipping', case when d.settled and p_tracking.shipping_time is not null
                then d.received_day end, p_tracking.shipping_time, null, null, null),
            ('delivery', case when d.settled and p_tracking.delivery_time is not null
                then d.received_day end, p_tracking.delivery_time, null, null, null),
            ('total', case when d.settled and p_tracking.total_time is not null
                then d.sent_day end, p_tracking.total_time, null, null, null),
            ('shipment', case when d.settled and d.shipped_day is not null
                then d.received_day end, null, d.shipped_day - d.received_day, null, null),
            ('on_time', case
                when d.settled and p_tracking.estimated_delivery is not null
                    and p_tracking.completed_at is null
                    then d.received_day
                end, null, null,
                p_tracking.delivered_at <= p_tracking.estimated_delivery,
                p_tracking.estimated_delivery)
    ) as f (kind, day, duration, shipped_after_days, on_time, due_at)
    where p_tracking.pharmacy_id is not null and f.day is not null
$fn$;

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

-- Rebuilds the facts of one pharmacy's tracking rows (every pharmacy when null) and marks
-- dirty every period the old or the new facts fall in. Used when a pharmacy's time zone
-- changes (its local dates move) and by a full recompute. Returns how many facts it wrote.
create or replace function private.rebuild_fulfillment_facts(p_pharmacy_id uuid default null)
returns integer
language plpgsql
set search_path = ''
as $fn$
declare
    v_pharmacy_ids uuid[];
    v_days date[];
    v_count integer;
begin
    with gone as (
        delete from private.fulfillment_facts as f
        where p_pharmacy_id is null or f.pharmacy_id = p_pharmacy_id
        returning f.pharmacy_id, f.day
    ),
    distinct_days as (select distinct gone.pharmacy_id, gone.day from gone)
    select pg_catalog.array_agg(dd.pharmacy_id), pg_catalog.array_agg(dd.day)
    into v_pharmacy_ids, v_days
    from distinct_days as dd;
    perform private.mark_fulfillment_days_dirty(v_pharmacy_ids, v_days);

    with added as (
        insert into private.fulfillment_facts
        select r.*
        from public.prescription_tracking as t
        join public.providers as p on p.id = t.pharmacy_id
        cross join lateral private.fulfillment_fact_rows(t, p.timezone) as r
        where p_pharmacy_id is null or t.pharmacy_id = p_pharmacy_id
        returning pharmacy_id, day
    ),
    distinct_days as (select added.pharmacy_id, added.day, pg_catalog.count(*) as n
        from added group by added.pharmacy_id, added.day)
    select pg_catalog.array_agg(dd.pharmacy_id), pg_catalog.array_agg(dd.day),
        coalesce(pg_catalog.sum(dd.n), 0)::integer
    into v_pharmacy_ids, v_days, v_count
    from distinct_days as dd;
    perform private.mark_fulfillment_days_dirty(v_pharmacy_ids, v_days);
    return v_count;
end
$fn$;

-- Trigger (providers, after update of timezone): the pharmacy's local dates move, so its facts
-- are rebuilt and all its periods (old and new) are marked dirty. Security definer: an admin
-- changing a provider may not write the analytics tables.
create or replace function private.follow_pharmacy_timezone()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.rebuild_fulfillment_facts(new.id);
    return null;
end
$fn$;

revoke execute on function private.fulfillment_period_start(text, date) from public;
revoke execute on function private.fulfillment_period_end(text, date) from public;
revoke execute on function private.fulfillment_fact_rows(public.prescription_tracking, text)
from public;
revoke execute on function private.mark_fulfillment_days_dirty(uuid[], date[]) from public;
revoke execute on function private.replace_fulfillment_facts(
    uuid[], public.prescription_tracking[]
) from public;
revoke execute on function private.track_fulfillment_facts_on_insert() from public;
revoke execute on function private.track_fulfillment_facts_on_update() from public;
revoke execute on function private.track_fulfillment_facts_on_delete() from public;
revoke execute on function private.rebuild_fulfillment_facts(uuid) from public;
revoke execute on function private.follow_pharmacy_timezone() from public;

-- The reports compute period bounds with these helpers, as the caller.
grant execute on function private.fulfillment_period_start(text, date)
to authenticated, service_role;
grant execute on function private.fulfillment_period_end(text, date)
to authenticated, service_role;

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

drop trigger if exists follow_pharmacy_timezone on public.providers;
create trigger follow_pharmacy_timezone
after update of timezone on public.providers
for each row
when (old.timezone is distinct from new.timezone)
execute function private.follow_pharmacy_timezone();
