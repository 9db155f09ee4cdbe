"""RLS cost of the ticket core as it grows: the same three frontend queries at 20k, 200k and 1M
tickets (5 messages per ticket), generated set-based. Providers and patients grow with the
tickets (one provider per 100 tickets, one patient per 4), so what each party sees stays the
same size: a growing product, not a fuller inbox. The queries run through PostgREST's session
shape as a party (role authenticated + request.jwt.claims in one transaction) and, as the
baseline in the same run, as postgres with the equivalent explicit filter (the same rows, checked).
Both sides run as prepared statements on their generic plan, as PostgREST's prepared statements
do. Prints p50/p95 of each, the ratio, the growth of the RLS p50 from the smallest to the largest
size, and the EXPLAIN plans (of those generic plans) at the largest size.

Targets: RLS/explicit p50 ratio <= 1.2 for every query at every size, and each query's RLS p50 at
the largest size (1M) <= 1.5 x its p50 at the smallest (20k).

Environment: BENCH_TICKETS_SIZES (comma list of ticket counts, default "20000,200000,1000000";
e.g. "20000,50000" for a quick run), BENCH_TICKETS_RUNS (default 400) timed runs per query and
side, BENCH_TICKETS_ROUNDS (default 1) rounds of those runs on the same data, interleaved, whose
ratios are shown as a range. BENCH_TICKETS_TRY_PROVIDER_IDS_ARRAY=1 also times, on the same data
in the same run, a trial that is not in the migrations: a plpgsql
`private.current_provider_ids_array()` returning `uuid[]`, which the policies compare with
`= any ((select ...)::uuid[])` instead of `= any (array(select private.current_provider_ids()))`
(itself plpgsql since migration 20261201126000, which is what the trial's gain came from).
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from bench.common import BenchCluster, migrated_cluster, percentile

SIZES = [
    int(n) for n in os.environ.get("BENCH_TICKETS_SIZES", "20000,200000,1000000").split(",") if n
]
RUNS = int(os.environ.get("BENCH_TICKETS_RUNS", "400"))
ROUNDS = max(1, int(os.environ.get("BENCH_TICKETS_ROUNDS", "1")))
TRY_PROVIDER_IDS_ARRAY = os.environ.get("BENCH_TICKETS_TRY_PROVIDER_IDS_ARRAY", "") == "1"
TARGET_RATIO = 1.2
TARGET_GROWTH = 1.5
TARGET_P50_MS = 5.0


@dataclass(frozen=True)
class Volume:
    """Row counts of one size; per-party volume is the same at every size."""

    tickets: int

    @property
    def patients(self) -> int:
        return max(1, self.tickets // 4)

    @property
    def providers(self) -> int:
        return max(len(KIND_SHARES) * 2, self.tickets // 100)

    @property
    def messages(self) -> int:
        return 5 * self.tickets

    @property
    def hot_threads(self) -> int:
        # A thousandth of the threads are busy (200 messages each); the rest share the others.
        return max(10, self.tickets // 1000)


# Providers by kind: [start, end) ranges of provider numbers.
KIND_SHARES = (
    ("pharmacy", 0.30),
    ("doctor", 0.30),
    ("specialist", 0.15),
    ("diagnostics_center", 0.10),
    ("counselor", 0.15),
)

GENERATE = """
set session_replication_role = replica;  -- bulk load: no triggers (the rows are consistent by
                                         -- construction: threads, members, sent_at are built here)

create temporary table kinds as
select kind, (sum(share) over (order by n) - share) * %(providers)s as lo,
    sum(share) over (order by n) * %(providers)s as hi
from (values {kinds}) as k (n, kind, share);

insert into auth.users (id, aud, role, email)
select md5('user' || i)::uuid, 'authenticated', 'authenticated', 'u' || i || '@bench.test'
from generate_series(0, %(patients)s + 2 * %(providers)s - 1) as i;

insert into public.profile (id, role, email)
select md5('user' || i)::uuid,
    case when i < %(patients)s then 'patient' else 'doctor' end,
    'u' || i || '@bench.test'
from generate_series(0, %(patients)s + 2 * %(providers)s - 1) as i;

insert into public.providers (id, kind, name)
select md5('provider' || i)::uuid, k.kind, k.kind || ' ' || i
from generate_series(0, %(providers)s - 1) as i
join kinds as k on i >= k.lo and i < k.hi;

-- Two members per provider: users patients + 2i and patients + 2i + 1.
insert into public.provider_members (provider_id, profile_id, member_role)
select md5('provider' || i)::uuid, md5('user' || (%(patients)s + 2 * i + r))::uuid,
    case when r = 0 then 'owner' else 'staff' end
from generate_series(0, %(providers)s - 1) as i, generate_series(0, 1) as r;

create temporary table provider_index as
select p.kind, p.id, row_number() over (partition by p.kind order by p.id) - 1 as n,
    count(*) over (partition by p.kind) as total
from public.providers as p;
create index on provider_index (kind, n);

-- Tickets: 60%% prescriptions, then consultations, referrals, diagnostics, counselling.
-- Parties are dealt round-robin over consecutive tickets of a type (the fulfiller) and of the
-- types that have a requester (the doctor), so every provider of a kind gets the same share at
-- every size. (Dealing by i alone, i being confined to some residues mod 100 per type, left
-- most providers of a kind without tickets once their count shared factors with 100: at 200k a
-- pharmacy had 333 tickets and a diagnostics centre 1000, against 200 and 200 at 80k.)
create temporary table ticket_plan as
select
    g.*,
    row_number() over (partition by g.ticket_type order by g.i) - 1 as fulfiller_n,
    row_number() over (
        partition by g.ticket_type in ('prescription', 'referral', 'diagnostic') order by g.i
    ) - 1 as requester_n
from (
    select
        i,
        md5('ticket' || i)::uuid as id,
        case
            when i %% 100 < 60 then 'prescription'
            when i %% 100 < 75 then 'consultation'
            when i %% 100 < 85 then 'referral'
            when i %% 100 < 93 then 'diagnostic'
            else 'counseling'
        end as ticket_type,
        -- bigint: at 1M tickets i * 7919 overflows an integer.
        md5('user' || ((i::bigint * 7919) %% %(patients)s))::uuid as patient_id,
        now() - (i * interval '37 seconds') as created_at,
        (i / 100) as step
    from generate_series(0, %(tickets)s - 1) as i
) as g;

insert into public.prescriptions (id, doctor_id, pharmacy_id, patient_id, medications, sent_at,
    created_at)
select md5('rx' || t.i)::uuid, m.profile_id, ph.id, t.patient_id, '[]', t.created_at, t.created_at
from ticket_plan as t
join provider_index as d on d.kind = 'doctor' and d.n = t.requester_n %% d.total
join public.provider_members as m on m.provider_id = d.id and m.member_role = 'owner'
join provider_index as ph on ph.kind = 'pharmacy' and ph.n = t.fulfiller_n %% ph.total
where t.ticket_type = 'prescription';

insert into public.healthcare_tickets (id, ticket_type, status, patient_id, primary_provider_id,
    secondary_provider_id, required_provider_kind, prescription_id, title, urgency,
    session_mode, scheduled_time, meeting_link, created_at, updated_at, sent_at)
select t.id, t.ticket_type, s.status, t.patient_id,
    case when t.ticket_type in ('prescription', 'referral', 'diagnostic') then d.id end,
    case when s.status = tt.claimable_status and t.i %% 2 = 0 then null else f.id end,
    tt.fulfiller_kind,
    case when t.ticket_type = 'prescription' then md5('rx' || t.i)::uuid end,
    initcap(t.ticket_type) || ' ' || t.i, 'normal', 'video',
    t.created_at + interval '2 days', 'https://meet.example/' || t.i,
    t.created_at, t.created_at,
    -- Sent on creation unless still a draft (a cancelled one was cancelled after sending).
    case when s.status <> 'created' then t.created_at end
from ticket_plan as t
join public.ticket_types as tt on tt.ticket_type = t.ticket_type
join provider_index as d on d.kind = 'doctor' and d.n = t.requester_n %% d.total
join provider_index as f on f.kind = tt.fulfiller_kind and f.n = t.fulfiller_n %% f.total
cross join lateral (
    select st.status from public.ticket_statuses as st
    where st.ticket_type = t.ticket_type
        and not (t.ticket_type = 'prescription' and st.status = 'created')
    order by st.rank, st.status
    offset (t.i / 7) %% (
        select count(*) from public.ticket_statuses as c
        where c.ticket_type = t.ticket_type
            and not (t.ticket_type = 'prescription' and c.status = 'created')
    )
    limit 1
) as s;

insert into public.chat_threads (id, ticket_id, order_id, order_type, title, metadata,
    created_at, updated_at)
select md5('thread' || t.i)::uuid, t.id, null, t.ticket_type, t.title,
    jsonb_build_object('ticket_id', t.id, 'target_id', t.secondary_provider_id),
    t.created_at, t.created_at
from (select p.i, h.* from ticket_plan as p join public.healthcare_tickets as h on h.id = p.id)
    as t;

insert into public.ticket_timeline (ticket_id, event_type, to_status, actor_kind, source,
    created_at)
select h.id, 'created', h.status, 'system', 'bench', h.created_at
from public.healthcare_tickets as h;

insert into public.chat_thread_members (thread_id, profile_id, role)
select distinct on (th.id, x.profile_id) th.id, x.profile_id, x.role
from public.healthcare_tickets as t
join public.chat_threads as th on th.ticket_id = t.id
cross join lateral (
    select t.patient_id as profile_id, 'patient' as role, 1 as priority
    union all
    select m.profile_id, 'primary', 2 from public.provider_members as m
    where m.provider_id = t.primary_provider_id
    union all
    select m.profile_id, 'secondary', 3 from public.provider_members as m
    where m.provider_id = t.secondary_provider_id
) as x
order by th.id, x.profile_id, x.priority;

-- Messages: the first HOT threads get 200 each, the rest share the remainder evenly.
insert into public.chat_messages (thread_id, sender_id, body, created_at)
select md5('thread' || g.t)::uuid, pt.patient_id, 'message ' || g.n,
    pt.created_at + g.n * interval '1 minute'
from (
    select (n / 200) as t, n from generate_series(0, %(hot)s * 200 - 1) as n
    union all
    select %(hot)s + (n %% (%(tickets)s - %(hot)s)), n
    from generate_series(0, %(messages)s - %(hot)s * 200 - 1) as n
) as g
join ticket_plan as pt on pt.i = g.t;

set session_replication_role = origin;
"""

RLS_INBOX = """
select coalesce(json_agg(r), '[]') from (
    select t.*, row_to_json(p.*) as prescription, row_to_json(th.*) as thread
    from public.healthcare_tickets as t
    left join lateral (
        select rx.* from public.prescriptions as rx where rx.id = t.prescription_id
    ) as p on true
    left join lateral (
        select c.id, c.title, c.updated_at from public.chat_threads as c where c.ticket_id = t.id
    ) as th on true
    where t.secondary_provider_id = %(provider)s and t.ticket_type = 'prescription'
    order by t.created_at desc
    limit 50
) as r
"""

EXPLICIT_INBOX = """
select coalesce(json_agg(r), '[]') from (
    select t.*, row_to_json(p.*) as prescription, row_to_json(th.*) as thread
    from public.healthcare_tickets as t
    left join lateral (
        -- A visible ticket's prescription is visible to its parties (prescriptions policy).
        select rx.* from public.prescriptions as rx where rx.id = t.prescription_id
    ) as p on true
    left join lateral (
        select c.id, c.title, c.updated_at from public.chat_threads as c
        where c.ticket_id = t.id and exists (
            select from public.chat_thread_members as m
            where m.thread_id = c.id and m.profile_id = %(user)s
        )
    ) as th on true
    where t.secondary_provider_id = %(provider)s and t.ticket_type = 'prescription'
        and t.sent_at is not null
        and exists (
            select from public.provider_members as pm
            where pm.provider_id = %(provider)s and pm.profile_id = %(user)s
        )
    order by t.created_at desc
    limit 50
) as r
"""

RLS_PATIENT = """
select coalesce(json_agg(r), '[]') from (
    select t.* from public.healthcare_tickets as t
    where t.patient_id = %(user)s
    order by t.created_at desc
) as r
"""

EXPLICIT_PATIENT = RLS_PATIENT

RLS_MESSAGES = """
select coalesce(json_agg(r), '[]') from (
    select m.* from public.chat_messages as m
    where m.thread_id = %(thread)s
    order by m.created_at desc
    limit 50
) as r
"""

EXPLICIT_MESSAGES = """
select coalesce(json_agg(r), '[]') from (
    select m.* from public.chat_messages as m
    where m.thread_id = %(thread)s
        and exists (
            select from public.chat_thread_members as tm
            where tm.thread_id = %(thread)s and tm.profile_id = %(user)s
        )
    order by m.created_at desc
    limit 50
) as r
"""


def generate(conn: psycopg.Connection, volume: Volume) -> None:
    kinds = ", ".join(f"({n}, '{kind}', {share})" for n, (kind, share) in enumerate(KIND_SHARES))
    params = {
        "patients": volume.patients,
        "providers": volume.providers,
        "tickets": volume.tickets,
        "messages": volume.messages,
        "hot": volume.hot_threads,
    }
    started = time.perf_counter()
    with conn.transaction():
        # Client-side binding: the script is many statements, sent as one simple query.
        psycopg.ClientCursor(conn).execute(GENERATE.format(kinds=kinds), params)  # type: ignore[arg-type]
    conn.execute("vacuum analyze")
    counts = conn.execute(
        "select (select count(*) from public.healthcare_tickets),"
        " (select count(*) from public.providers),"
        " (select count(*) from public.profile where role = 'patient'),"
        " (select count(*) from public.chat_messages),"
        " (select count(*) from public.chat_thread_members)"
    ).fetchone()
    assert counts is not None
    print(
        f"generated {counts[0]} tickets, {counts[1]} providers, {counts[2]} patients,"
        f" {counts[3]} messages, {counts[4]} thread members"
        f" in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


def cases(
    conn: psycopg.Connection, volume: Volume, rng: random.Random
) -> dict[str, list[dict[str, Any]]]:
    """Parameters for each query: a party and what they look at."""
    pharmacies = conn.execute(
        "select m.provider_id, m.profile_id from public.provider_members as m"
        " join public.providers as p on p.id = m.provider_id where p.kind = 'pharmacy'"
    ).fetchall()
    patients = conn.execute(
        "select distinct patient_id from public.healthcare_tickets limit 5000"
    ).fetchall()
    threads = conn.execute(
        "select m.thread_id, m.profile_id from public.chat_thread_members as m"
        " where m.thread_id in (select md5('thread' || i)::uuid"
        "   from generate_series(0, %s - 1) as i)",
        [volume.hot_threads],
    ).fetchall()
    return {
        "pharmacy inbox": [
            {"provider": p, "user": u} for p, u in rng.sample(pharmacies, min(200, len(pharmacies)))
        ],
        "patient tickets": [{"user": u} for (u,) in rng.sample(patients, min(500, len(patients)))],
        "thread messages": [
            {"thread": t, "user": u} for t, u in rng.sample(threads, min(500, len(threads)))
        ],
    }


def as_party(conn: psycopg.Connection, user: object) -> None:
    """PostgREST's per-request session shape (inside the caller's transaction)."""
    conn.execute("set local role authenticated")
    conn.execute(
        "select set_config('request.jwt.claims', %s, true), set_config('request.method', 'GET',"
        " true)",
        [json.dumps({"sub": str(user), "role": "authenticated", "aud": "authenticated"})],
    )


# Both sides run the plan a prepared statement settles on (psycopg prepares a query after its
# fifth run, PostgREST prepares its statements): the generic plan. Left to choose, the plan
# cache kept the explicit inbox on custom plans, planning it afresh (about 1 ms) on every run,
# while the RLS side ran its generic plan: the baseline paid for planning, the RLS side did not.
PLAN_MODE = "set local plan_cache_mode = force_generic_plan"


def time_query(
    conn: psycopg.Connection,
    sql: str,
    params: Sequence[dict[str, Any]],
    rls: bool,
    runs: int,
    rng: random.Random,
) -> list[float]:
    """Milliseconds of the query statement alone (the session setup is not timed)."""
    samples = []
    for _ in range(runs):
        p = rng.choice(params)
        with conn.transaction():
            conn.execute(PLAN_MODE)
            if rls:
                as_party(conn, p["user"])
            started = time.perf_counter()
            conn.execute(sql, p).fetchall()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def explain(conn: psycopg.Connection, query: str, p: dict[str, Any], rls: bool) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the plan that is timed: the generic plan of the prepared
    statement (a plain EXPLAIN with parameters would plan them as constants)."""
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", query)))
    prepared = query
    for number, name in enumerate(names, start=1):
        prepared = prepared.replace(f"%({name})s", f"${number}")
    types = ", ".join("uuid" for _ in names)
    with conn.transaction():
        conn.execute(PLAN_MODE)
        if rls:
            as_party(conn, p["user"])
        conn.execute(f"prepare bench_explained ({types}) as {prepared}")  # type: ignore[arg-type]
        arguments = sql.SQL(", ").join(sql.Literal(str(p[name])) for name in names)
        rows = conn.execute(
            sql.SQL("explain (analyze, buffers, costs off) execute bench_explained ({})").format(
                arguments
            )
        ).fetchall()
        conn.execute("deallocate bench_explained")
    return "\n".join("    " + r[0] for r in rows)


def check_same_result(
    conn: psycopg.Connection, rls_sql: str, explicit_sql: str, p: dict[str, Any]
) -> None:
    with conn.transaction():
        as_party(conn, p["user"])
        via_rls = conn.execute(rls_sql, p).fetchone()
    explicit = conn.execute(explicit_sql, p).fetchone()
    assert via_rls == explicit, "RLS and explicit filter disagree"
    assert via_rls is not None
    assert via_rls[0], "the party sees nothing: a vacuous comparison"


QUERIES: list[tuple[str, str, str]] = [
    ("pharmacy inbox", RLS_INBOX, EXPLICIT_INBOX),
    ("patient tickets", RLS_PATIENT, EXPLICIT_PATIENT),
    ("thread messages", RLS_MESSAGES, EXPLICIT_MESSAGES),
]


# The trial (bench databases only): the caller's providers as one uuid[] from a plpgsql
# function, so a policy reads one scalar InitPlan instead of building an array from a set.
PROVIDER_IDS_ARRAY = """
create function private.current_provider_ids_array()
returns uuid[]
language plpgsql stable
security definer
set search_path = ''
as $fn$
begin
    return array(
        select m.provider_id from public.provider_members as m
        where m.profile_id = (select auth.uid())
    );
end
$fn$;
revoke execute on function private.current_provider_ids_array() from public;
grant execute on function private.current_provider_ids_array() to authenticated;
"""
PROVIDER_IDS_SET_CALL = re.compile(
    r"ARRAY\(\s*SELECT private\.current_provider_ids\(\) AS current_provider_ids\)"
)


def use_provider_ids_array(conn: psycopg.Connection) -> int:
    """Rewrite every policy that reads private.current_provider_ids() to the uuid[] trial;
    returns how many policies changed."""
    conn.execute(PROVIDER_IDS_ARRAY)
    changed = 0
    for schema, table, name, using, check in conn.execute(
        "select n.nspname, c.relname, p.polname, pg_get_expr(p.polqual, p.polrelid),"
        " pg_get_expr(p.polwithcheck, p.polrelid)"
        " from pg_policy p join pg_class c on c.oid = p.polrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
    ).fetchall():
        parts = []
        for clause, expression in (("using", using), ("with check", check)):
            if expression and PROVIDER_IDS_SET_CALL.search(expression):
                rewritten = PROVIDER_IDS_SET_CALL.sub(
                    "(SELECT private.current_provider_ids_array())::uuid[]", expression
                )
                parts.append(f"{clause} ({rewritten})")
        if parts:
            conn.execute(
                sql.SQL("alter policy {} on {}.{} ").format(
                    sql.Identifier(name), sql.Identifier(schema), sql.Identifier(table)
                )
                + sql.SQL(" ".join(parts))  # type: ignore[arg-type]
            )
            changed += 1
    return changed


@dataclass(frozen=True)
class Result:
    query: str
    rls_p50: float
    rls_p95: float
    explicit_p50: float
    explicit_p95: float
    # The p50 ratio of each round (BENCH_TICKETS_ROUNDS), to show the spread on a shared machine.
    round_ratios: tuple[float, ...] = ()

    @property
    def ratio(self) -> float:
        return self.rls_p50 / self.explicit_p50

    @property
    def spread(self) -> str:
        if len(self.round_ratios) < 2:
            return ""
        return f"{min(self.round_ratios):.2f}-{max(self.round_ratios):.2f}"


def time_queries(
    conn: psycopg.Connection,
    params: dict[str, list[dict[str, Any]]],
    rng: random.Random,
    with_plans: bool,
) -> tuple[list[Result], list[str]]:
    """p50/p95 of each query through RLS and explicitly, and their plans when asked."""
    results: list[Result] = []
    plans: list[str] = []
    for name, rls_sql, explicit_sql in QUERIES:
        for p in params[name][:20]:
            check_same_result(conn, rls_sql, explicit_sql, p)
        # Warm both, then interleave the sides so drift on a shared machine hits both.
        time_query(conn, rls_sql, params[name], True, 50, rng)
        time_query(conn, explicit_sql, params[name], False, 50, rng)
        rls: list[float] = []
        explicit: list[float] = []
        round_ratios: list[float] = []
        for _ in range(ROUNDS):
            round_rls: list[float] = []
            round_explicit: list[float] = []
            for _ in range(max(1, RUNS // 50)):
                round_rls += time_query(conn, rls_sql, params[name], True, 50, rng)
                round_explicit += time_query(conn, explicit_sql, params[name], False, 50, rng)
            round_ratios.append(percentile(round_rls, 50) / percentile(round_explicit, 50))
            rls += round_rls
            explicit += round_explicit
        results.append(
            Result(
                name,
                percentile(rls, 50),
                percentile(rls, 95),
                percentile(explicit, 50),
                percentile(explicit, 95),
                tuple(round_ratios),
            )
        )
        if with_plans:
            sample = params[name][0]
            plans.append(f"--- {name}: RLS (as party)\n{explain(conn, rls_sql, sample, True)}")
            plans.append(
                f"--- {name}: explicit (as postgres)\n{explain(conn, explicit_sql, sample, False)}"
            )
    return results, plans


def measure_size(
    bench: BenchCluster, volume: Volume, with_plans: bool
) -> tuple[list[Result], list[Result], list[str]]:
    """Generate one size in a database of its own (cloned from the migrated one), time the
    queries (and the uuid[] trial when asked), drop it."""
    dbname = f"tickets_{volume.tickets}"
    rng = random.Random(20261121 + volume.tickets)
    with psycopg.connect(bench.cluster.url(), autocommit=True) as admin:
        admin.execute(f"drop database if exists {dbname}")
        admin.execute(f"create database {dbname} template carehub")
    trial: list[Result] = []
    try:
        with psycopg.connect(bench.cluster.url(dbname), autocommit=True) as conn:
            generate(conn, volume)
            params = cases(conn, volume, rng)
            results, plans = time_queries(conn, params, rng, with_plans)
            if TRY_PROVIDER_IDS_ARRAY:
                changed = use_provider_ids_array(conn)
                print(f"  trial: {changed} policies now read private.current_provider_ids_array()")
                trial, trial_plans = time_queries(conn, params, rng, with_plans)
                plans += [
                    f"--- uuid[] trial, {plan.removeprefix('--- ')}" for plan in trial_plans[:1]
                ]
    finally:
        with psycopg.connect(bench.cluster.url(), autocommit=True) as admin:
            admin.execute(f"drop database if exists {dbname} with (force)")
    return results, trial, plans


def main() -> None:
    sizes = sorted(set(SIZES))
    curve: dict[int, list[Result]] = {}
    trial_curve: dict[int, list[Result]] = {}
    plans: list[str] = []
    with migrated_cluster({"shared_buffers": "512MB", "work_mem": "16MB"}) as bench:
        for tickets in sizes:
            curve[tickets], trial, size_plans = measure_size(
                bench, Volume(tickets), with_plans=tickets == sizes[-1]
            )
            report_size(tickets, curve[tickets])
            if trial:
                trial_curve[tickets] = trial
                report_size(tickets, trial, "uuid[] trial (not in the migrations)")
            plans += size_plans
    met = report_curve(curve)
    if trial_curve:
        report_curve(trial_curve, "uuid[] trial (not in the migrations)")
    print("\nEXPLAIN (ANALYZE, BUFFERS) of one sample each, at the largest size:")
    for plan in plans:
        print(plan)
    print(f"\nRLS targets {'met' if met else 'NOT met'}")


def report_size(tickets: int, results: list[Result], label: str = "as migrated") -> None:
    volume = Volume(tickets)
    print(
        f"\n{label}, {tickets} tickets ({volume.providers} providers, {volume.patients} patients,"
        f" {volume.messages} messages): {RUNS} runs per query and side"
        f"{f' in each of {ROUNDS} rounds' if ROUNDS > 1 else ''}; statement time in ms"
        " (session setup not timed; generic plans on both sides)"
    )
    print(
        f"{'query':<18}{'RLS p50':>9}{'RLS p95':>9}{'expl p50':>10}{'expl p95':>10}"
        f"{'p50 ratio':>11}{'rounds':>11}  target"
    )
    for r in results:
        ok = r.ratio <= TARGET_RATIO and r.rls_p50 <= TARGET_P50_MS
        print(
            f"{r.query:<18}{r.rls_p50:>9.3f}{r.rls_p95:>9.3f}{r.explicit_p50:>10.3f}"
            f"{r.explicit_p95:>10.3f}{r.ratio:>11.2f}{r.spread:>11}  {'met' if ok else 'MISSED'}"
        )
    print(f"target: p50 ratio <= {TARGET_RATIO} and RLS p50 <= {TARGET_P50_MS} ms per query")


def report_curve(curve: dict[int, list[Result]], label: str = "as migrated") -> bool:
    """The growth curve: each query's RLS p50 (and ratio) per size; True when every target
    holds."""
    sizes = sorted(curve)
    smallest, largest = sizes[0], sizes[-1]
    print(f"\n{label}: RLS p50 in ms (ratio RLS/explicit) by number of tickets")
    print(f"{'query':<18}" + "".join(f"{n:>18}" for n in sizes) + f"{'growth':>9}  target")
    met = True
    for index, (name, _rls, _explicit) in enumerate(QUERIES):
        row = [curve[n][index] for n in sizes]
        growth = row[-1].rls_p50 / row[0].rls_p50
        ok = all(r.ratio <= TARGET_RATIO for r in row) and (
            len(sizes) == 1 or growth <= TARGET_GROWTH
        )
        met = met and ok
        cells = "".join(f"{f'{r.rls_p50:.3f} ({r.ratio:.2f})':>18}" for r in row)
        print(f"{name:<18}{cells}{growth:>9.2f}  {'met' if ok else 'MISSED'}")
    print(
        f"targets: ratio <= {TARGET_RATIO} at every size; RLS p50 at {largest} <= "
        f"{TARGET_GROWTH} x p50 at {smallest} (the issue's sizes: 1M and 20k)"
    )
    return met
