-- Fulfilment analytics: the facts each tracking row contributes (in its pharmacy's local
-- dates), dirty marking when tracking or a pharmacy's time zone changes, the rollup of dirty
-- periods into public.fulfillment_analytics (incremental and full), and fulfillment_report.
-- Measures and their definitions: README, "Fulfilment and operations analytics".

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
-- due_at has passed). A pickup has no on-time outcome: nobody promised to deliver it.
create or replace function private.fulfillment_fact_rows(
    p_tracking public.prescription_tracking, p_timezone text
)
returns setof private.fulfillment_facts
language sql stable
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
language sql
set search_path = ''
as $fn$
    insert into private.fulfillment_dirty_periods (pharmacy_id, grain, period_start)
    select distinct d.pharmacy_id, g.grain, private.fulfillment_period_start(g.grain, d.day)
    from rows from (pg_catalog.unnest(p_pharmacy_ids), pg_catalog.unnest(p_days))
        as d (pharmacy_id, day)
    cross join (values ('day'), ('week'), ('month')) as g (grain)
    where d.pharmacy_id is not null and d.day is not null
$fn$;

-- Trigger (prescription_tracking, after insert, delete, and updates of what analytics reads):
-- replaces the row's facts and marks dirty every period its old and its new facts fall in.
-- Security definer: whoever moves a ticket may not write the analytics tables.
create or replace function private.track_fulfillment_facts()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_pharmacy_ids uuid[] := '{}'::uuid[];
    v_days date[] := '{}'::date[];
begin
    if tg_op in ('UPDATE', 'DELETE') then
        with gone as (
            delete from private.fulfillment_facts as f
            where f.tracking_id = old.id
            returning f.pharmacy_id, f.day
        )
        select
            coalesce(pg_catalog.array_agg(gone.pharmacy_id), '{}'::uuid[]),
            coalesce(pg_catalog.array_agg(gone.day), '{}'::date[])
        into v_pharmacy_ids, v_days
        from gone;
    end if;
    if tg_op in ('INSERT', 'UPDATE') and new.pharmacy_id is not null then
        with added as (
            insert into private.fulfillment_facts
            select r.*
            from public.providers as p
            cross join lateral private.fulfillment_fact_rows(new, p.timezone) as r
            where p.id = new.pharmacy_id
            returning pharmacy_id, day
        )
        select
            v_pharmacy_ids || coalesce(pg_catalog.array_agg(added.pharmacy_id), '{}'::uuid[]),
            v_days || coalesce(pg_catalog.array_agg(added.day), '{}'::date[])
        into v_pharmacy_ids, v_days
        from added;
    end if;
    perform private.mark_fulfillment_days_dirty(v_pharmacy_ids, v_days);
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

-- Recomputes the given pharmacy periods, and the network periods (pharmacy_id null: every
-- pharmacy pooled, each under its own local dates) they belong to, from the facts: deletes
-- their rows and inserts one per period with activity. Percentiles come from the raw facts
-- (percentile_cont), never from other rollups. Returns how many rows it wrote.
create or replace function private.recompute_fulfillment_periods(
    p_periods private.fulfillment_period[]
)
returns integer
language plpgsql
set search_path = ''
as $fn$
declare
    v_targets private.fulfillment_period[];
    v_now timestamptz := pg_catalog.now();
    v_insert text;
    v_count integer;
    v_added integer;
begin
    v_targets := array(
        select distinct row(t.pharmacy_id, t.grain, t.period_start)::private.fulfillment_period
        from pg_catalog.unnest(p_periods) as p
        cross join lateral (
            values (p.pharmacy_id, p.grain, p.period_start),
                (null::uuid, p.grain, p.period_start)
        ) as t (pharmacy_id, grain, period_start)
    );
    delete from public.fulfillment_analytics as a
    using pg_catalog.unnest(v_targets) as t
    where t.pharmacy_id is not null and a.pharmacy_id = t.pharmacy_id
        and a.grain = t.grain and a.period_start = t.period_start;
    delete from public.fulfillment_analytics as a
    using pg_catalog.unnest(v_targets) as t
    where t.pharmacy_id is null and a.pharmacy_id is null
        and a.grain = t.grain and a.period_start = t.period_start;

    -- One statement per kind of target, so each joins the facts through its own index
    -- (pharmacy and day, or day alone): a single join serving both would pair every
    -- pharmacy target with the network's whole date range. The join is a fixed text.
    v_insert := '
    insert into public.fulfillment_analytics (
        pharmacy_id, grain, period_start, sent_count, received_count, shipped_count,
        delivered_count, picked_up_count, cancelled_count, failed_count,
        processing_mean, processing_p50, processing_p90, shipping_mean, shipping_p50,
        shipping_p90, delivery_mean, delivery_p50, delivery_p90, total_mean, total_p50,
        total_p90, on_time_rate, same_day_shipment_rate, next_day_shipment_rate, bottleneck,
        computed_at
    )
    select
        r.pharmacy_id, r.grain, r.period_start, r.sent_count, r.received_count,
        r.shipped_count, r.delivered_count, r.picked_up_count, r.cancelled_count,
        r.failed_count,
        r.processing_mean, r.processing_pct[1], r.processing_pct[2],
        r.shipping_mean, r.shipping_pct[1], r.shipping_pct[2],
        r.delivery_mean, r.delivery_pct[1], r.delivery_pct[2],
        r.total_mean, r.total_pct[1], r.total_pct[2],
        r.on_time::numeric / nullif(r.on_time_denominator, 0),
        r.same_day::numeric / nullif(r.shipments, 0),
        r.next_day::numeric / nullif(r.shipments, 0),
        -- The stage with the largest median; the earlier stage on a tie; null without any.
        case greatest(r.processing_pct[1], r.shipping_pct[1], r.delivery_pct[1])
            when r.processing_pct[1] then ''processing''
            when r.shipping_pct[1] then ''shipping''
            when r.delivery_pct[1] then ''delivery''
        end,
        $2
    from (
        select
            t.pharmacy_id, t.grain, t.period_start,
            (pg_catalog.count(*) filter (where f.kind = ''sent''))::integer as sent_count,
            (pg_catalog.count(*) filter (where f.kind = ''received''))::integer as received_count,
            (pg_catalog.count(*) filter (where f.kind = ''shipped''))::integer as shipped_count,
            (pg_catalog.count(*) filter (where f.kind = ''delivered''))::integer
                as delivered_count,
            (pg_catalog.count(*) filter (where f.kind = ''picked_up''))::integer
                as picked_up_count,
            (pg_catalog.count(*) filter (where f.kind = ''cancelled''))::integer
                as cancelled_count,
            (pg_catalog.count(*) filter (where f.kind = ''failed''))::integer as failed_count,
            pg_catalog.avg(f.duration) filter (where f.kind = ''processing'') as processing_mean,
            pg_catalog.percentile_cont(array[0.5, 0.9]::double precision[])
                within group (order by f.duration) filter (where f.kind = ''processing'')
                as processing_pct,
            pg_catalog.avg(f.duration) filter (where f.kind = ''shipping'') as shipping_mean,
            pg_catalog.percentile_cont(array[0.5, 0.9]::double precision[])
                within group (order by f.duration) filter (where f.kind = ''shipping'')
                as shipping_pct,
            pg_catalog.avg(f.duration) filter (where f.kind = ''delivery'') as delivery_mean,
            pg_catalog.percentile_cont(array[0.5, 0.9]::double precision[])
                within group (order by f.duration) filter (where f.kind = ''delivery'')
                as delivery_pct,
            pg_catalog.avg(f.duration) filter (where f.kind = ''total'') as total_mean,
            pg_catalog.percentile_cont(array[0.5, 0.9]::double precision[])
                within group (order by f.duration) filter (where f.kind = ''total'')
                as total_pct,
            pg_catalog.count(*) filter (where f.kind = ''on_time'' and f.on_time) as on_time,
            pg_catalog.count(*) filter (
                where f.kind = ''on_time'' and (f.on_time is not null or f.due_at < $2)
            ) as on_time_denominator,
            pg_catalog.count(*) filter (where f.kind = ''shipment'') as shipments,
            pg_catalog.count(*) filter (where f.kind = ''shipment'' and f.shipped_after_days = 0)
                as same_day,
            pg_catalog.count(*) filter (where f.kind = ''shipment'' and f.shipped_after_days = 1)
                as next_day
        from pg_catalog.unnest($1) as t
        join private.fulfillment_facts as f on %s
        group by t.pharmacy_id, t.grain, t.period_start
    ) as r';
    execute pg_catalog.format(v_insert,
        'f.pharmacy_id = t.pharmacy_id and f.day >= t.period_start'
        || ' and f.day < private.fulfillment_period_end(t.grain, t.period_start)')
    using array(select x from pg_catalog.unnest(v_targets) as x where x.pharmacy_id is not null),
        v_now;
    get diagnostics v_count = row_count;
    execute pg_catalog.format(v_insert,
        'f.day >= t.period_start'
        || ' and f.day < private.fulfillment_period_end(t.grain, t.period_start)')
    using array(select x from pg_catalog.unnest(v_targets) as x where x.pharmacy_id is null),
        v_now;
    get diagnostics v_added = row_count;
    return v_count + v_added;
end
$fn$;

-- The worker's job: recomputes up to p_limit dirty markings (oldest first) and the periods
-- whose on-time outcome changed because an estimate passed undelivered since the last run;
-- records the time of the run. One refresher at a time (an advisory lock: two would race to
-- write the same network rows); a second caller returns 0 at once. Returns how many dirty
-- markings it consumed.
create or replace function private.refresh_fulfillment_analytics(p_limit integer default 200000)
returns integer
language plpgsql
set search_path = ''
as $fn$
declare
    v_now timestamptz := pg_catalog.now();
    v_checked timestamptz;
    v_claimed private.fulfillment_period[];
    v_count integer;
begin
    if not pg_catalog.pg_try_advisory_xact_lock(
        pg_catalog.hashtext('carehub.fulfillment_analytics')
    ) then
        return 0;
    end if;
    select s.estimates_checked_at into v_checked
    from private.fulfillment_analytics_state as s;
    perform private.mark_fulfillment_days_dirty(
        pg_catalog.array_agg(f.pharmacy_id), pg_catalog.array_agg(f.day)
    )
    from private.fulfillment_facts as f
    where f.kind = 'on_time' and f.on_time is null
        and f.due_at > coalesce(v_checked, '-infinity') and f.due_at <= v_now;

    with claimed as (
        delete from private.fulfillment_dirty_periods as d
        where d.id in (
            select c.id from private.fulfillment_dirty_periods as c
            order by c.id
            limit p_limit
            -- Markings of transactions still running are not visible, and rows another
            -- session deletes are skipped rather than waited for.
            for update skip locked
        )
        returning d.pharmacy_id, d.grain, d.period_start
    )
    select pg_catalog.array_agg(
        distinct row(claimed.pharmacy_id, claimed.grain, claimed.period_start)
        ::private.fulfillment_period
    ), pg_catalog.count(*)::integer
    into v_claimed, v_count
    from claimed;
    if v_count > 0 then
        perform private.recompute_fulfillment_periods(v_claimed);
    end if;
    update private.fulfillment_analytics_state
    set estimates_checked_at = v_now, last_recompute_at = v_now;
    return v_count;
end
$fn$;

-- Full recompute for operators (`carehub analytics recompute`): rebuilds the facts of one
-- pharmacy (all when null) from tracking, then recomputes every period of that scope that
-- overlaps p_from .. p_to (inclusive; open ends when null) — the periods with facts and those
-- with rows — with the same code as the worker, so both give the same rows. Waits for a
-- running refresh. Returns how many rollup rows it wrote.
create or replace function private.recompute_fulfillment_analytics(
    p_from date default null, p_to date default null, p_pharmacy_id uuid default null
)
returns integer
language plpgsql
set search_path = ''
as $fn$
declare
    v_periods private.fulfillment_period[];
    v_count integer;
begin
    if p_from > p_to then
        raise exception 'the period is empty: --from % is after --to %', p_from, p_to
        using errcode = '22023';
    end if;
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('carehub.fulfillment_analytics'));
    perform private.rebuild_fulfillment_facts(p_pharmacy_id);
    v_periods := array(
        select distinct row(x.pharmacy_id, g.grain,
            private.fulfillment_period_start(g.grain, x.day))::private.fulfillment_period
        from (
            select distinct f.pharmacy_id, f.day from private.fulfillment_facts as f
            where p_pharmacy_id is null or f.pharmacy_id = p_pharmacy_id
            union
            select a.pharmacy_id, a.period_start from public.fulfillment_analytics as a
            where a.pharmacy_id is not null
                and (p_pharmacy_id is null or a.pharmacy_id = p_pharmacy_id)
        ) as x
        cross join (values ('day'), ('week'), ('month')) as g (grain)
        where x.day >= private.fulfillment_period_start(g.grain, coalesce(p_from, x.day))
            and x.day <= coalesce(p_to, x.day)
    );
    -- The markings the rebuild made for this scope are covered by this recompute.
    delete from private.fulfillment_dirty_periods as d
    where (p_pharmacy_id is null or d.pharmacy_id = p_pharmacy_id)
        and d.period_start <= coalesce(p_to, d.period_start)
        and private.fulfillment_period_end(d.grain, d.period_start)
            > coalesce(p_from, d.period_start);
    v_count := private.recompute_fulfillment_periods(v_periods);
    -- A recompute of everything has judged every estimate against now(); a partial one has
    -- not judged the other periods', so the worker keeps looking from where it was.
    update private.fulfillment_analytics_state
    set last_recompute_at = pg_catalog.now(),
        estimates_checked_at = case
            when p_from is null and p_to is null and p_pharmacy_id is null
                then pg_catalog.now()
            else estimates_checked_at
        end;
    return v_count;
end
$fn$;

-- public.fulfillment_report: the rollup rows of grain p_grain ('day', 'week', 'month') whose
-- period overlaps p_from .. p_to (inclusive), for one pharmacy or every pharmacy the caller
-- may see (RLS on fulfillment_analytics: a pharmacy's members its rows, admins all, and the
-- network rows, pharmacy_id null, for admins only: an admin asking for one pharmacy gets it
-- beside the network). Raises 22023 for a bad grain or range, CH008 when the caller asks for
-- a pharmacy they do not act for. Security invoker: RLS decides.
create or replace function public.fulfillment_report(
    p_from date, p_to date, p_grain text default 'day', p_pharmacy_id uuid default null
)
returns table (
    pharmacy_id uuid,
    grain text,
    period_start date,
    sent_count integer,
    received_count integer,
    shipped_count integer,
    delivered_count integer,
    picked_up_count integer,
    cancelled_count integer,
    failed_count integer,
    processing_mean interval,
    processing_p50 interval,
    processing_p90 interval,
    shipping_mean interval,
    shipping_p50 interval,
    shipping_p90 interval,
    delivery_mean interval,
    delivery_p50 interval,
    delivery_p90 interval,
    total_mean interval,
    total_p50 interval,
    total_p90 interval,
    on_time_rate numeric,
    same_day_shipment_rate numeric,
    next_day_shipment_rate numeric,
    bottleneck text
)
language plpgsql stable
set search_path = ''
as $fn$
declare
    v_pharmacy_ids uuid[];
begin
    if p_grain is null or p_grain not in ('day', 'week', 'month') then
        raise exception 'grain must be day, week or month, not %', coalesce(p_grain, 'null')
        using errcode = '22023';
    end if;
    if p_from is null or p_to is null or p_from > p_to then
        raise exception 'give a period with from <= to (got % .. %)', p_from, p_to
        using errcode = '22023';
    end if;
    if p_to - p_from > 3660 then
        raise exception 'the period is longer than ten years; ask for less'
        using errcode = '22023';
    end if;
    if p_pharmacy_id is not null and auth.role() = 'authenticated'
        and not (select private.is_admin())
        and not private.is_provider_member(p_pharmacy_id) then
        raise exception 'you do not act for pharmacy %', p_pharmacy_id
        using errcode = 'CH008';
    end if;
    -- Which pharmacies: the one asked for; else everyone for admins and system sessions, and
    -- the caller's own for anyone else (RLS would filter the same rows; naming them lets the
    -- period index find them directly). Then the network rows, which RLS shows admins only.
    v_pharmacy_ids := case
        when p_pharmacy_id is not null then array[p_pharmacy_id]
        when auth.role() = 'authenticated' and not (select private.is_admin())
            then array(select private.current_provider_ids())
    end;
    -- Two statements rather than one with an OR, so each keeps its index plan.
    if v_pharmacy_ids is null then
        return query
        select
            a.pharmacy_id, a.grain, a.period_start, a.sent_count, a.received_count,
            a.shipped_count, a.delivered_count, a.picked_up_count, a.cancelled_count,
            a.failed_count, a.processing_mean, a.processing_p50, a.processing_p90,
            a.shipping_mean, a.shipping_p50, a.shipping_p90, a.delivery_mean, a.delivery_p50,
            a.delivery_p90, a.total_mean, a.total_p50, a.total_p90, a.on_time_rate,
            a.same_day_shipment_rate, a.next_day_shipment_rate, a.bottleneck
        from public.fulfillment_analytics as a
        where a.grain = p_grain
            and a.period_start >= private.fulfillment_period_start(p_grain, p_from)
            and a.period_start <= p_to
            and a.pharmacy_id is not null
        order by a.pharmacy_id, a.period_start;
    else
        return query
        select
            a.pharmacy_id, a.grain, a.period_start, a.sent_count, a.received_count,
            a.shipped_count, a.delivered_count, a.picked_up_count, a.cancelled_count,
            a.failed_count, a.processing_mean, a.processing_p50, a.processing_p90,
            a.shipping_mean, a.shipping_p50, a.shipping_p90, a.delivery_mean, a.delivery_p50,
            a.delivery_p90, a.total_mean, a.total_p50, a.total_p90, a.on_time_rate,
            a.same_day_shipment_rate, a.next_day_shipment_rate, a.bottleneck
        from public.fulfillment_analytics as a
        where a.pharmacy_id = any(v_pharmacy_ids)
            and a.grain = p_grain
            and a.period_start >= private.fulfillment_period_start(p_grain, p_from)
            and a.period_start <= p_to
        order by a.pharmacy_id, a.period_start;
    end if;
    return query
    select
        a.pharmacy_id, a.grain, a.period_start, a.sent_count, a.received_count,
        a.shipped_count, a.delivered_count, a.picked_up_count, a.cancelled_count,
        a.failed_count, a.processing_mean, a.processing_p50, a.processing_p90,
        a.shipping_mean, a.shipping_p50, a.shipping_p90, a.delivery_mean, a.delivery_p50,
        a.delivery_p90, a.total_mean, a.total_p50, a.total_p90, a.on_time_rate,
        a.same_day_shipment_rate, a.next_day_shipment_rate, a.bottleneck
    from public.fulfillment_analytics as a
    where a.pharmacy_id is null
        and a.grain = p_grain
        and a.period_start >= private.fulfillment_period_start(p_grain, p_from)
        and a.period_start <= p_to
    order by a.period_start;
end
$fn$;

revoke execute on function private.fulfillment_period_start(text, date) from public;
revoke execute on function private.fulfillment_period_end(text, date) from public;
revoke execute on function private.fulfillment_fact_rows(public.prescription_tracking, text)
from public;
revoke execute on function private.mark_fulfillment_days_dirty(uuid[], date[]) from public;
revoke execute on function private.track_fulfillment_facts() from public;
revoke execute on function private.rebuild_fulfillment_facts(uuid) from public;
revoke execute on function private.follow_pharmacy_timezone() from public;
revoke execute on function private.recompute_fulfillment_periods(private.fulfillment_period[])
from public;
revoke execute on function private.refresh_fulfillment_analytics(integer) from public;
revoke execute on function private.recompute_fulfillment_analytics(date, date, uuid) from public;
revoke execute on function public.fulfillment_report(date, date, text, uuid) from public;
-- The reports compute period bounds with these helpers, as the caller.
grant execute on function private.fulfillment_period_start(text, date)
to authenticated, service_role;
grant execute on function private.fulfillment_period_end(text, date)
to authenticated, service_role;
grant execute on function private.refresh_fulfillment_analytics(integer) to service_role;
grant execute on function private.recompute_fulfillment_analytics(date, date, uuid)
to service_role;
grant execute on function public.fulfillment_report(date, date, text, uuid)
to authenticated, service_role;

drop trigger if exists track_fulfillment_facts on public.prescription_tracking;
create trigger track_fulfillment_facts
after insert or delete on public.prescription_tracking
for each row execute function private.track_fulfillment_facts();

drop trigger if exists track_fulfillment_facts_on_update on public.prescription_tracking;
create trigger track_fulfillment_facts_on_update
after update on public.prescription_tracking
for each row
when (
    (
        old.pharmacy_id, old.sent_at, old.received_at, old.processing_at, old.shipped_at,
        old.delivered_at, old.completed_at, old.cancelled_at, old.failed_at,
        old.estimated_delivery
    ) is distinct from (
        new.pharmacy_id, new.sent_at, new.received_at, new.processing_at, new.shipped_at,
        new.delivered_at, new.completed_at, new.cancelled_at, new.failed_at,
        new.estimated_delivery
    )
)
execute function private.track_fulfillment_facts();

drop trigger if exists follow_pharmacy_timezone on public.providers;
create trigger follow_pharmacy_timezone
after update of timezone on public.providers
for each row
when (old.timezone is distinct from new.timezone)
execute function private.follow_pharmacy_timezone();
