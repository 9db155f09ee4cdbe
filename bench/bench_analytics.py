"""Fulfilment analytics benchmark (issue 12).

Builds BENCH_ANALYTICS_PRESCRIPTIONS tracked prescriptions (default 1,000,000) over
BENCH_ANALYTICS_PHARMACIES pharmacies (default 2,000; sizes skewed, twelve time zones) and a
year, then measures, in one run on one database:

1. the full recompute (`private.recompute_fulfillment_analytics()`: facts rebuilt from tracking,
   every period recomputed);
2. the incremental path: 10,000 events (2,500 new prescriptions received and 7,500 status
   updates) across 100 pharmacies and 7 days, applied with the triggers on, in transactions of
   100 like the inbox processing; then the worker's refresh until nothing is dirty (its time,
   summed over runs), with the rows checked against a full recompute of the same scope;
3. `fulfillment_report` timed server-side (EXPLAIN ANALYZE execution time, p50 of
   BENCH_ANALYTICS_RUNS runs): as a member of the largest pharmacy through RLS over a quarter
   (daily rows), and as an admin network-wide over a quarter (weekly rows) — against an explicit
   aggregate over the raw tracking rows giving the same answer (checked equal in the run).

The tracking rows are inserted with triggers off (session_replication_role = replica, so the
tickets and prescriptions they point to are not created); everything measured runs normally.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import date

import psycopg

from bench.common import median, migrated_cluster, percentile

PRESCRIPTIONS = int(os.environ.get("BENCH_ANALYTICS_PRESCRIPTIONS", "1000000"))
PHARMACIES = int(os.environ.get("BENCH_ANALYTICS_PHARMACIES", "2000"))
RUNS = int(os.environ.get("BENCH_ANALYTICS_RUNS", "30"))
YEAR_START = date(2025, 12, 1)
QUARTER = (date(2026, 7, 1), date(2026, 9, 30))
EVENT_DAYS = (date(2026, 9, 21), date(2026, 9, 27))  # a Monday .. Sunday inside the quarter
ZONES = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
    "Pacific/Honolulu", "Europe/London", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo",
    "Australia/Sydney", "Pacific/Kiritimati", "UTC",
)  # fmt: skip

CONTRACT = (
    "pharmacy_id, grain, period_start, sent_count, received_count, shipped_count, "
    "delivered_count, picked_up_count, cancelled_count, failed_count, processing_mean, "
    "processing_p50, processing_p90, shipping_mean, shipping_p50, shipping_p90, delivery_mean, "
    "delivery_p50, delivery_p90, total_mean, total_p50, total_p90, on_time_rate, "
    "same_day_shipment_rate, next_day_shipment_rate, bottleneck"
)

# The same answer as fulfillment_report(from, to, grain) for every pharmacy and the network,
# computed from the raw tracking rows (no rollups, no facts table).
RAW_AGGREGATE = """
with facts as (
    select r.pharmacy_id, r.kind, r.day, r.duration, r.shipped_after_days, r.on_time, r.due_at,
        private.fulfillment_period_start(%(grain)s, r.day) as period_start
    from public.prescription_tracking as t
    join public.providers as p on p.id = t.pharmacy_id
    cross join lateral private.fulfillment_fact_rows(t, p.timezone) as r
),
agg as (
    select f.pharmacy_id, f.period_start,
        count(*) filter (where f.kind = 'sent')::integer as sent_count,
        count(*) filter (where f.kind = 'received')::integer as received_count,
        count(*) filter (where f.kind = 'shipped')::integer as shipped_count,
        count(*) filter (where f.kind = 'delivered')::integer as delivered_count,
        count(*) filter (where f.kind = 'picked_up')::integer as picked_up_count,
        count(*) filter (where f.kind = 'cancelled')::integer as cancelled_count,
        count(*) filter (where f.kind = 'failed')::integer as failed_count,
        avg(f.duration) filter (where f.kind = 'processing') as processing_mean,
        percentile_cont(array[0.5, 0.9]::float8[]) within group (order by f.duration)
            filter (where f.kind = 'processing') as processing_pct,
        avg(f.duration) filter (where f.kind = 'shipping') as shipping_mean,
        percentile_cont(array[0.5, 0.9]::float8[]) within group (order by f.duration)
            filter (where f.kind = 'shipping') as shipping_pct,
        avg(f.duration) filter (where f.kind = 'delivery') as delivery_mean,
        percentile_cont(array[0.5, 0.9]::float8[]) within group (order by f.duration)
            filter (where f.kind = 'delivery') as delivery_pct,
        avg(f.duration) filter (where f.kind = 'total') as total_mean,
        percentile_cont(array[0.5, 0.9]::float8[]) within group (order by f.duration)
            filter (where f.kind = 'total') as total_pct,
        count(*) filter (where f.kind = 'on_time' and f.on_time) as on_time,
        count(*) filter (where f.kind = 'on_time' and (f.on_time is not null
            or f.due_at < now())) as on_time_denominator,
        count(*) filter (where f.kind = 'shipment') as shipments,
        count(*) filter (where f.kind = 'shipment' and f.shipped_after_days = 0) as same_day,
        count(*) filter (where f.kind = 'shipment' and f.shipped_after_days = 1) as next_day
    from facts as f
    where f.period_start >= private.fulfillment_period_start(%(grain)s, %(from)s)
        and f.period_start <= %(to)s
    group by grouping sets ((f.pharmacy_id, f.period_start), (f.period_start))
)
select a.pharmacy_id, %(grain)s::text, a.period_start, a.sent_count, a.received_count,
    a.shipped_count, a.delivered_count, a.picked_up_count, a.cancelled_count, a.failed_count,
    a.processing_mean, a.processing_pct[1], a.processing_pct[2],
    a.shipping_mean, a.shipping_pct[1], a.shipping_pct[2],
    a.delivery_mean, a.delivery_pct[1], a.delivery_pct[2],
    a.total_mean, a.total_pct[1], a.total_pct[2],
    a.on_time::numeric / nullif(a.on_time_denominator, 0),
    a.same_day::numeric / nullif(a.shipments, 0), a.next_day::numeric / nullif(a.shipments, 0),
    case greatest(a.processing_pct[1], a.shipping_pct[1], a.delivery_pct[1])
        when a.processing_pct[1] then 'processing' when a.shipping_pct[1] then 'shipping'
        when a.delivery_pct[1] then 'delivery' end
from agg as a
order by a.pharmacy_id nulls last, a.period_start
"""


def log(message: str) -> None:
    print(message, flush=True)


def build(conn: psycopg.Connection) -> None:
    started = time.perf_counter()
    conn.execute("set session_replication_role = replica")
    conn.execute(
        "insert into public.providers (kind, name, timezone)"
        " select 'pharmacy', 'Pharmacy ' || g, (%s::text[])[1 + g %% %s]"
        " from generate_series(1, %s) as g",
        [list(ZONES), len(ZONES), PHARMACIES],
    )
    # Skewed sizes: pharmacy k gets a share proportional to 1 / (k + 10).
    conn.execute(
        """
        create temporary table bench_pharmacies as
        select id, row_number() over (order by name) as k from public.providers
        where kind = 'pharmacy'
        """
    )
    conn.execute(
        """
        create temporary table bench_weights as
        select id, sum(1.0 / (k + 10)) over (order by k) / sum(1.0 / (k + 10)) over () as upto
        from bench_pharmacies
        """
    )
    conn.execute("create index on bench_weights (upto)")
    conn.execute("analyze bench_weights")
    batch = 200_000
    for offset in range(0, PRESCRIPTIONS, batch):
        n = min(batch, PRESCRIPTIONS - offset)
        conn.execute(
            """
            insert into public.prescription_tracking (
                ticket_id, prescription_id, pharmacy_id, current_status, sent_at, received_at,
                processing_at, ready_at, shipped_at, delivered_at, completed_at, cancelled_at,
                failed_at, estimated_delivery
            )
            select gen_random_uuid(), gen_random_uuid(), w.id, 'sent', s.sent,
                s.sent + s.r1, s.sent + s.r1 + s.r2,
                case when s.u < 0.1 then s.sent + s.r1 + s.r2 + interval '1 hour' end,
                case when s.u >= 0.1 and s.u < 0.97 then s.sent + s.r1 + s.r2 + s.r3 end,
                case when s.u >= 0.1 and s.u < 0.95 then s.sent + s.r1 + s.r2 + s.r3 + s.r4 end,
                case when s.u < 0.1 then s.sent + s.r1 + s.r2 + s.r4 end,
                case when s.u >= 0.97 and s.u < 0.99 then s.sent + s.r1 + s.r2 + s.r3 end,
                case when s.u >= 0.99 then s.sent + s.r1 + s.r2 + s.r3 end,
                case when s.v < 0.8 then s.sent + interval '3 days' end
            from (
                select random() as pick, random() as u, random() as v,
                    %(start)s::timestamptz + random() * interval '365 days' as sent,
                    random() * interval '6 hours' as r1, random() * interval '30 hours' as r2,
                    random() * interval '30 hours' as r3, random() * interval '72 hours' as r4
                from generate_series(1, %(n)s)
            ) as s
            cross join lateral (
                select b.id from bench_weights as b where b.upto >= s.pick order by b.upto limit 1
            ) as w
            """,
            {"start": YEAR_START, "n": n},
        )
    conn.execute("set session_replication_role = origin")
    conn.execute("analyze")
    log(
        f"built {PRESCRIPTIONS:,} tracked prescriptions over {PHARMACIES:,} pharmacies "
        f"in {time.perf_counter() - started:.0f} s"
    )


def full_recompute(conn: psycopg.Connection) -> None:
    started = time.perf_counter()
    rows = conn.execute("select private.recompute_fulfillment_analytics()").fetchone()[0]
    elapsed = time.perf_counter() - started
    # As autovacuum would soon: statistics, and the visibility map index-only scans need.
    conn.execute("vacuum analyze")
    log(f"full recompute: {elapsed:.1f} s ({rows:,} rollup rows)")


def incremental(conn: psycopg.Connection) -> None:
    pharmacies = [
        r[0]
        for r in conn.execute(
            "select id from public.providers where kind = 'pharmacy' order by random() limit 100"
        )
    ]
    days = (EVENT_DAYS[1] - EVENT_DAYS[0]).days + 1
    # The events point at no real ticket: apply them in replica mode (no foreign-key checks)
    # with the analytics triggers set to fire there too, so each event costs what it costs
    # the analytics in production (the facts, the dirty markings).
    for trigger in ("track_fulfillment_facts_on_insert", "track_fulfillment_facts_on_update"):
        conn.execute(f"alter table public.prescription_tracking enable always trigger {trigger}")
    conn.execute("set session_replication_role = replica")
    started = time.perf_counter()
    new_ids: list[uuid.UUID] = []
    events = 0
    with conn.transaction():
        for i in range(2500):
            pharmacy = pharmacies[i % 100]
            new_ids.append(
                conn.execute(
                    "insert into public.prescription_tracking (ticket_id, prescription_id,"
                    " pharmacy_id, current_status, sent_at, received_at, estimated_delivery)"
                    " select gen_random_uuid(), gen_random_uuid(), %s, 'sent', d, d + interval"
                    " '1 hour', d + interval '3 days'"
                    " from (select %s::timestamptz + %s * interval '1 day'"
                    " + random() * interval '20 hours' as d) as x returning id",
                    [pharmacy, EVENT_DAYS[0], i % days],
                ).fetchone()[0]
            )
            events += 1
    for column, after in (
        ("processing_at", "received_at + interval '2 hours'"),
        ("shipped_at", "processing_at + interval '20 hours'"),
        ("delivered_at", "shipped_at + interval '30 hours'"),
    ):
        for start in range(0, len(new_ids), 100):
            with conn.transaction():
                for tracking_id in new_ids[start : start + 100]:
                    conn.execute(
                        f"update public.prescription_tracking set {column} = {after}"  # noqa: S608
                        " where id = %s",
                        [tracking_id],
                    )
                    events += 1
    applied = time.perf_counter() - started
    conn.execute("set session_replication_role = origin")
    dirty = conn.execute("select count(*) from private.fulfillment_dirty_periods").fetchone()[0]
    worker = 0.0
    runs = 0
    while True:
        t0 = time.perf_counter()
        consumed = conn.execute("select private.refresh_fulfillment_analytics()").fetchone()[0]
        worker += time.perf_counter() - t0
        runs += 1
        if not consumed:
            break
    log(
        f"incremental: {events:,} events over 100 pharmacies and {days} days applied in "
        f"{applied:.1f} s ({dirty:,} dirty markings); worker refresh {worker:.2f} s in {runs} "
        "runs (target <= 2 s)"
    )
    # Same rows as a recompute of the same scope (three of the pharmacies, the event week's
    # days, week and month, and the network's).
    window = (
        f"select {CONTRACT} from public.fulfillment_analytics"  # noqa: S608
        " where (pharmacy_id = any(%(ids)s) or pharmacy_id is null)"
        " and period_start >= date_trunc('month', %(from)s::date)::date"
        " and period_start <= %(to)s order by 1, 2, 3"
    )
    scope = {"ids": pharmacies[:3], "from": EVENT_DAYS[0], "to": EVENT_DAYS[1]}
    before = conn.execute(window, scope).fetchall()
    for pharmacy in pharmacies[:3]:
        conn.execute(
            "select private.recompute_fulfillment_analytics(%s, %s, %s)", [*EVENT_DAYS, pharmacy]
        )
    after = conn.execute(window, scope).fetchall()
    log(
        f"incremental rows equal a recompute of the same scope ({len(before)} rows): "
        f"{before == after}"
    )


def explain_ms(conn: psycopg.Connection, query: str, params: object) -> float:
    # Server-side execution time; TIMING OFF so per-node clocks do not inflate the raw side.
    plan = conn.execute(f"explain (analyze, timing off, format json) {query}", params).fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Execution Time"])


def as_request(conn: psycopg.Connection, user_id: uuid.UUID) -> None:
    conn.execute("set local role authenticated")
    conn.execute(
        "select set_config('request.jwt.claims', %s, true)",
        [json.dumps({"sub": str(user_id), "role": "authenticated", "aud": "authenticated"})],
    )


def user(conn: psycopg.Connection, role: str) -> uuid.UUID:
    user_id = uuid.uuid4()
    conn.execute(
        "insert into auth.users (id, aud, role, email, raw_app_meta_data, created_at, updated_at)"
        " values (%s, 'authenticated', 'authenticated', %s, %s, now(), now())",
        [user_id, f"{role}-{user_id.hex[:8]}@bench.test", json.dumps({"role": role})],
    )
    return user_id


def reports(conn: psycopg.Connection) -> None:
    largest = conn.execute(
        "select pharmacy_id from public.prescription_tracking group by 1 order by count(*) desc"
        " limit 1"
    ).fetchone()[0]
    size = conn.execute(
        "select count(*) from public.prescription_tracking where pharmacy_id = %s", [largest]
    ).fetchone()[0]
    member = user(conn, "pharmacist")
    conn.execute(
        "insert into public.provider_members (provider_id, profile_id, member_role)"
        " values (%s, %s, 'owner')",
        [largest, member],
    )
    admin = user(conn, "admin")
    report = "select * from public.fulfillment_report(%s, %s, %s, %s)"

    member_ms = []
    for _ in range(RUNS):
        with conn.transaction():
            as_request(conn, member)
            member_ms.append(explain_ms(conn, report, [*QUARTER, "day", largest]))
    log(
        f"report, member of the largest pharmacy ({size:,} prescriptions) through RLS, a "
        f"quarter by day: p50 {median(member_ms):.2f} ms, p90 {percentile(member_ms, 90):.2f} ms "
        "(target <= 10 ms)"
    )

    admin_ms = []
    for _ in range(RUNS):
        with conn.transaction():
            as_request(conn, admin)
            admin_ms.append(explain_ms(conn, report, [*QUARTER, "week", None]))
    raw_params = {"grain": "week", "from": QUARTER[0], "to": QUARTER[1]}
    raw_ms = [explain_ms(conn, RAW_AGGREGATE, raw_params) for _ in range(max(3, RUNS // 10))]
    with conn.transaction():
        as_request(conn, admin)
        from_report = conn.execute(
            f"select {CONTRACT} from public.fulfillment_report(%s, %s, 'week')",  # noqa: S608
            list(QUARTER),
        ).fetchall()
    from_raw = conn.execute(RAW_AGGREGATE, raw_params).fetchall()
    speedup = median(raw_ms) / median(admin_ms)
    log(
        f"report, admin network-wide, a quarter by week ({len(from_report):,} rows): p50 "
        f"{median(admin_ms):.1f} ms; raw aggregate over tracking p50 {median(raw_ms):.0f} ms: "
        f"{speedup:.0f}x faster (target >= 20x); same answer: {from_report == from_raw}"
    )


def main() -> None:
    with migrated_cluster() as bench, psycopg.connect(bench.url, autocommit=True) as conn:
        build(conn)
        full_recompute(conn)
        incremental(conn)
        reports(conn)


if __name__ == "__main__":
    main()
