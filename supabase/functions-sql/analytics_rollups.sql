-- Fulfilment analytics: the rollup of dirty periods into public.fulfillment_analytics
-- (incremental worker and full recompute), and public.fulfillment_report.

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

revoke execute on function private.recompute_fulfillment_periods(private.fulfillment_period[])
from public;
revoke execute on function private.refresh_fulfillment_analytics(integer) from public;
revoke execute on function private.recompute_fulfillment_analytics(date, date, uuid) from public;
revoke execute on function public.fulfillment_report(date, date, text, uuid) from public;

grant execute on function private.refresh_fulfillment_analytics(integer) to service_role;
grant execute on function private.recompute_fulfillment_analytics(date, date, uuid)
to service_role;
grant execute on function public.fulfillment_report(date, date, text, uuid)
to authenticated, service_role;
