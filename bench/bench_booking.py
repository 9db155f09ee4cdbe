"""Booking, against pgbench's TPC-B on the same cluster in the same run.

Two questions, two phases; every attempt is one transaction shaped as PostgREST runs an RPC (set
the role, `request.jwt.claims` and `request.headers`, then `select public.request_reservation`).

Success path: how many bookings a calendar takes per second when each attempt gets a place.
Distinct signed-in patients (role authenticated, their own `sub`) book with practitioners who
confirm at once (`appointment_approval_required = false`), on slots with exactly one free place
per attempt, in random order, so every attempt runs the whole path: hold, approval,
reservation. Run with pgbench (the same C client as the baseline, so the ratio compares
database work, not clients). Target: successful bookings/s >= 0.5 x TPC-B tps at scale 32,
every attempt confirmed, zero overbooking. Then a smaller profiled batch (pg_stat_statements
with nested statements, pg_stat_user_functions) shows where a booking's time goes.

Contention: 20,000 anonymous attempts on 500 slots of capacity 3, so most meet a full slot
(CH002), as on a popular calendar. Each attempt has its own phone number and client address
(`x-real-ip`), so the anonymous caps (CH009) do not decide the outcome. Made twice on fresh
calendars: by pgbench (through a bench-only wrapper that turns CH002/CH005/CH009 into a result,
since pgbench 15 ends a client at any other error) and by 32 Python threads with psycopg (what a
Python service would see). Audited: zero overbooked slots, zero counter mismatches.

Environment: BENCH_CLIENTS (32), BENCH_SUCCESS_ATTEMPTS (20000), BENCH_SUCCESS_PRACTITIONERS
(20), BENCH_PROFILE_ATTEMPTS (2000; 0 skips the profile), BENCH_SLOTS (500), BENCH_CAPACITY (3),
BENCH_ATTEMPTS (20000), BENCH_TPCB_SECONDS (30), BENCH_TPCB_SCALES (comma list of pgbench -s
values, "1,32": plain `pgbench -i` is scale 1, where every client updates the one branch row;
scale 32 gives the clients 32 branches, the fairer and stricter baseline, and the target's).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from app.localdb import find_bin_dir
from bench.common import BenchCluster, migrated_cluster, percentile

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "32"))
SUCCESS_ATTEMPTS = int(os.environ.get("BENCH_SUCCESS_ATTEMPTS", "20000"))
SUCCESS_PRACTITIONERS = int(os.environ.get("BENCH_SUCCESS_PRACTITIONERS", "20"))
PROFILE_ATTEMPTS = int(os.environ.get("BENCH_PROFILE_ATTEMPTS", "2000"))
SLOTS = int(os.environ.get("BENCH_SLOTS", "500"))
CAPACITY = int(os.environ.get("BENCH_CAPACITY", "3"))
ATTEMPTS = int(os.environ.get("BENCH_ATTEMPTS", "20000"))
TPCB_SECONDS = int(os.environ.get("BENCH_TPCB_SECONDS", "30"))
TPCB_SCALES = [int(s) for s in os.environ.get("BENCH_TPCB_SCALES", "1,32").split(",") if s]
TARGET_SCALE = 32
TARGET_RATIO = 0.5

# The refusals a contended anonymous attempt may meet: slot full, slot not bookable, a cap.
EXPECTED_REFUSALS = ("CH002", "CH005", "CH009")

ANON_CLAIMS = json.dumps({"role": "anon"})
# What PostgREST runs at the start of each request's transaction.
START_REQUEST = (
    "select set_config('role', 'anon', true), set_config('request.jwt.claims', %s, true),"
    " set_config('request.headers', %s, true)"
)
BOOK = "select public.request_reservation(%s, %s, %s)"


def client_address(n: int) -> str:
    """A distinct client address per attempt number (up to 2**24 of them)."""
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def request_headers(n: int) -> str:
    """The headers Supabase's gateway passes on (both address headers, as it sets them)."""
    address = client_address(n)
    return json.dumps({"x-real-ip": address, "x-forwarded-for": address})


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, outcome: str) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def create_practitioner(conn: psycopg.Connection, label: str) -> tuple[str, str]:
    """A practitioner who confirms at once and one service of theirs: (profile id, service id)."""
    doctor = conn.execute(
        "insert into auth.users (id, aud, role, email, raw_app_meta_data)"
        " values (gen_random_uuid(), 'authenticated', 'authenticated', %s,"
        ' \'{"role": "doctor"}\') returning id',
        [f"bench.{label}@example.test"],
    ).fetchone()
    assert doctor is not None
    conn.execute(
        "update public.profile set appointment_approval_required = false where id = %s",
        [doctor[0]],
    )
    service = conn.execute(
        "insert into public.medical_service (profile_id, name, duration, price)"
        " values (%s, 'Bench consultation', 30, 40) returning id",
        [doctor[0]],
    ).fetchone()
    assert service is not None
    return str(doctor[0]), str(service[0])


def create_slots(conn: psycopg.Connection, doctor: str, service: str, count: int) -> list[str]:
    """``count`` consecutive 30-minute slots of CAPACITY places, from tomorrow."""
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    rows = conn.execute(
        "insert into public.time_slot (profile_id, service_id, start_time, end_time,"
        " max_reservations)"
        " select %(d)s, %(s)s, %(t)s + n * interval '30 minutes',"
        " %(t)s + (n + 1) * interval '30 minutes', %(c)s"
        " from generate_series(0, %(n)s - 1) as n returning id",
        {"d": doctor, "s": service, "t": first, "n": count, "c": CAPACITY},
    ).fetchall()
    return [str(row[0]) for row in rows]


def create_calendar(url: str, label: str) -> list[str]:
    """One practitioner who confirms at once, SLOTS slots of CAPACITY places."""
    with psycopg.connect(url, autocommit=True) as conn:
        doctor, service = create_practitioner(conn, label)
        slots = create_slots(conn, doctor, service, SLOTS)
        conn.execute("vacuum analyze")
    return slots


# Bench-only objects (never in migrations). bench.slot numbers the contended phase's slots;
# bench.attempt numbers its attempts (phone and address); bench.try_request turns the
# expected refusals into a result, since pgbench 15 ends a client at any error but
# serialization failures and deadlocks (it costs one subtransaction per attempt).
# bench.place is the success phase's plan: one row per attempt, its patient's claims and
# headers and the slot with the place it books; bench.turn hands the rows out.
PGBENCH_SETUP = """
create schema bench;
create table bench.slot (n integer primary key, id uuid not null);
create sequence bench.attempt;
create function bench.try_request(p_slot_id uuid, p_phone text)
returns text
language plpgsql
set search_path = ''
as $fn$
begin
    perform public.request_reservation(p_slot_id, 'Bench Patient', p_phone);
    return 'ok';
exception when sqlstate 'CH002' or sqlstate 'CH005' or sqlstate 'CH009' then
    return sqlstate;
end
$fn$;
create function bench.headers(p_n bigint)
returns text
language sql
immutable
set search_path = ''
as $fn$
    select pg_catalog.json_build_object('x-real-ip', a.address, 'x-forwarded-for', a.address)::text
    from (select pg_catalog.format('10.%s.%s.%s', (p_n >> 16) & 255, (p_n >> 8) & 255,
                                   p_n & 255) as address) as a
$fn$;
create table bench.place (
    n bigint primary key, slot_id uuid not null, phone text not null, claims text not null,
    headers text not null
);
create sequence bench.turn;
grant usage on schema bench to anon, authenticated;
grant select on bench.slot, bench.place to anon, authenticated;
grant usage on sequence bench.attempt, bench.turn to anon, authenticated;
grant execute on function bench.try_request(uuid, text), bench.headers(bigint)
to anon, authenticated;
"""

CONTENDED_SCRIPT = """\\set n random(1, {slots})
begin;
select set_config('role', 'anon', true) as role_set,
    set_config('request.jwt.claims', '{claims}', true) as claims_set,
    set_config('request.headers', bench.headers(a.attempt), true) as headers_set, a.attempt
from (select nextval('bench.attempt') as attempt) as a \\gset
select bench.try_request((select id from bench.slot where n = :n),
    '+3460' || lpad(:attempt::text, 8, '0'));
commit;
"""

SUCCESS_SCRIPT = """begin;
select set_config('role', 'authenticated', true) as role_set,
    set_config('request.jwt.claims', p.claims, true) as claims_set,
    set_config('request.headers', p.headers, true) as headers_set, p.n as place
from bench.place as p where p.n = (select nextval('bench.turn')) \\gset
select public.request_reservation((select slot_id from bench.place where n = :place),
    'Bench Patient', (select phone from bench.place where n = :place));
commit;
"""


def pgbench_connection(bench: BenchCluster) -> list[str]:
    target = conninfo_to_dict(bench.url)
    return ["-h", str(target["host"]), "-p", str(target["port"]), "-U", "postgres"]


def set_up_pgbench(bench: BenchCluster) -> None:
    with psycopg.connect(bench.url, autocommit=True) as conn:
        conn.execute(PGBENCH_SETUP)


def run_pgbench(bench: BenchCluster, script_text: str, attempts: int) -> tuple[float, list[float]]:
    """Run ``attempts`` transactions of a custom script over CLIENTS connections; returns
    (elapsed seconds by pgbench's clock, per-transaction latencies). Fails when a client
    stopped on an error."""
    workdir = Path(tempfile.mkdtemp(prefix="carehub-bench-booking-"))
    script = workdir / "booking.sql"
    script.write_text(script_text)
    per_client = attempts // CLIENTS
    started = time.perf_counter()
    result = subprocess.run(
        [
            str(find_bin_dir() / "pgbench"),
            "-n",
            "-c",
            str(CLIENTS),
            "-j",
            "2",
            "-t",
            str(per_client),
            "-f",
            str(script),
            "-l",
            "--log-prefix",
            str(workdir / "log"),
            *pgbench_connection(bench),
            "carehub",
        ],
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed:\n{result.stdout}\n{result.stderr}")
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.stdout)
    latencies = [
        int(line.split()[2]) / 1e6
        for log in workdir.glob("log.*")
        for line in log.read_text().splitlines()
    ]
    shutil.rmtree(workdir, ignore_errors=True)
    if len(latencies) != per_client * CLIENTS:
        raise RuntimeError(
            f"pgbench ran {len(latencies)} of {per_client * CLIENTS} transactions:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    if match:  # pgbench's own clock excludes connection set-up
        elapsed = len(latencies) / float(match.group(1))
    return elapsed, latencies


def hammer_with_pgbench(bench: BenchCluster, slots: list[str]) -> tuple[float, list[float]]:
    """The contended anonymous attempts, with pgbench."""
    with psycopg.connect(bench.url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "insert into bench.slot (n, id) values (%s, %s)", list(enumerate(slots, start=1))
        )
    script = CONTENDED_SCRIPT.format(slots=len(slots), claims=ANON_CLAIMS)
    return run_pgbench(bench, script, ATTEMPTS)


def hammer(url: str, slots: list[str]) -> tuple[float, Tally]:
    """The contended anonymous attempts, with Python threads."""
    tally = Tally()
    next_attempt = itertools.count()
    counter_lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS + 1)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with psycopg.connect(url, autocommit=False) as conn:
            barrier.wait()
            while True:
                with counter_lock:
                    attempt = next(next_attempt)
                if attempt >= ATTEMPTS:
                    return
                slot = rng.choice(slots)
                phone = f"+3460{attempt:08d}"
                started = time.perf_counter()
                try:
                    conn.execute(START_REQUEST, [ANON_CLAIMS, request_headers(attempt)])
                    conn.execute(BOOK, [slot, "Bench Patient", phone])
                    conn.commit()
                    outcome = "ok"
                except psycopg.Error as exc:
                    conn.rollback()
                    outcome = exc.sqlstate or "?"
                tally.add(time.perf_counter() - started, outcome)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started, cpu_started = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    # The Python client shares the machine's cores with the server: say how much it took.
    print(
        f"  (python client used {time.process_time() - cpu_started:.1f} s of CPU in "
        f"{elapsed:.1f} s on {os.cpu_count()} cores)"
    )
    return elapsed, tally


def plan_success_places(url: str, label: str, attempts: int) -> list[str]:
    """Practitioners who confirm at once, slots holding exactly ``attempts`` places, a distinct
    patient per place, shuffled into bench.place; returns the slots."""
    places_per_practitioner = math.ceil(attempts / SUCCESS_PRACTITIONERS)
    with psycopg.connect(url, autocommit=True) as conn:
        slots: list[str] = []
        for n in range(SUCCESS_PRACTITIONERS):
            doctor, service = create_practitioner(conn, f"{label}.{n}")
            slots += create_slots(
                conn, doctor, service, math.ceil(places_per_practitioner / CAPACITY)
            )
        places = [slot for slot in slots for _ in range(CAPACITY)][:attempts]
        # The last slot may keep free places; only the planned places are booked.
        random.Random(label).shuffle(places)
        first = conn.execute("select coalesce(max(n), 0) + 1 from bench.place").fetchone()
        assert first is not None
        patients = conn.execute(
            "insert into auth.users (id, aud, role, email)"
            " select gen_random_uuid(), 'authenticated', 'authenticated',"
            " format('bench.%%s.patient.%%s@example.test', %s::text, n)"
            " from generate_series(1, %s) as n returning id",
            [label, attempts],
        ).fetchall()
        with conn.cursor() as cur:
            cur.executemany(
                "insert into bench.place (n, slot_id, phone, claims, headers)"
                " values (%s, %s, %s, %s, %s)",
                [
                    (
                        first[0] + i,
                        slot,
                        f"+3461{first[0] + i:08d}",
                        json.dumps(
                            {"sub": str(patient), "role": "authenticated", "aud": "authenticated"}
                        ),
                        request_headers(first[0] + i),
                    )
                    for i, (slot, (patient,)) in enumerate(zip(places, patients, strict=True))
                ],
            )
        conn.execute("vacuum analyze")
    return sorted(set(places))


def book_every_place(bench: BenchCluster, label: str, attempts: int) -> tuple[float, int]:
    """Book ``attempts`` planned places with pgbench; returns (bookings/s, attempts)."""
    attempts = attempts // CLIENTS * CLIENTS
    slots = plan_success_places(bench.url, label, attempts)
    elapsed, latencies = run_pgbench(bench, SUCCESS_SCRIPT, attempts)
    overbooked, mismatches, reserved, held, _full = audit(bench.url, slots)
    confirmed = reserved
    rate = confirmed / elapsed
    print(
        f"success path ({label}): {CLIENTS} connections, {attempts} signed-in patients booking "
        f"{attempts} free places with {SUCCESS_PRACTITIONERS} practitioners, in {elapsed:.2f} s"
    )
    print(
        f"  successful bookings/s: {rate:.0f}   confirmed: {confirmed} of {attempts} "
        f"(pending: {held})"
    )
    print(
        f"  latency per booking: p50 {percentile(latencies, 50) * 1000:.2f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.2f} ms"
    )
    print(f"  overbooked slots: {overbooked}, counter mismatches: {mismatches} (must be 0)")
    if confirmed != attempts or held or overbooked or mismatches:
        raise SystemExit("success path: not every attempt became a confirmed reservation")
    return rate, attempts


PROFILE_STATEMENTS = """
select calls, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 3),
    regexp_replace(left(query, 110), '\\s+', ' ', 'g')
from extensions.pg_stat_statements
where dbid = (select oid from pg_database where datname = current_database())
    and query not like '%%pg_stat_statements%%'
order by total_exec_time desc
limit 20
"""

PROFILE_FUNCTIONS = """
select funcid::regprocedure::text, calls, round(total_time::numeric, 1),
    round(self_time::numeric, 1)
from pg_stat_user_functions
order by self_time desc
limit 15
"""


def profile_success_path(bench: BenchCluster) -> None:
    """Book PROFILE_ATTEMPTS more places with every nested statement and function timed."""
    with psycopg.connect(bench.url, autocommit=True) as conn:
        conn.execute("create extension if not exists pg_stat_statements with schema extensions")
        conn.execute("alter system set pg_stat_statements.track = 'all'")
        conn.execute("alter system set track_functions = 'pl'")
        conn.execute("select pg_reload_conf()")
    label = "profile"
    attempts = PROFILE_ATTEMPTS // CLIENTS * CLIENTS
    slots = plan_success_places(bench.url, label, attempts)
    with psycopg.connect(bench.url, autocommit=True) as conn:
        conn.execute("select extensions.pg_stat_statements_reset(), pg_stat_reset()")
    elapsed, _latencies = run_pgbench(bench, SUCCESS_SCRIPT, attempts)
    with psycopg.connect(bench.url, autocommit=True) as conn:
        statements = conn.execute(PROFILE_STATEMENTS).fetchall()
        functions = conn.execute(PROFILE_FUNCTIONS).fetchall()
        conn.execute("alter system reset pg_stat_statements.track")
        conn.execute("alter system reset track_functions")
        conn.execute("select pg_reload_conf()")
    overbooked, mismatches, reserved, _held, _full = audit(bench.url, slots)
    print(
        f"profile of the success path: {attempts} bookings ({reserved} confirmed) in "
        f"{elapsed:.2f} s with statement tracking on (slower than unprofiled; "
        f"{elapsed / attempts * 1000 * CLIENTS:.2f} ms per booking and connection)"
    )
    print("  statements by total time (nested ones included, so times overlap):")
    print(f"  {'calls':>7} {'total ms':>10} {'mean ms':>8}  query")
    for calls, total, mean, query in statements:
        print(f"  {calls:>7} {total:>10} {mean:>8}  {query}")
    print("  PL/pgSQL functions by self time (ms):")
    print(f"  {'calls':>7} {'total ms':>10} {'self ms':>8}  function")
    for function, calls, total, self_time in functions:
        print(f"  {calls:>7} {total:>10} {self_time:>8}  {function}")
    if overbooked or mismatches:
        raise SystemExit("profiled success path overbooked or left counters wrong")


def audit(url: str, slots: list[str]) -> tuple[int, int, int, int, int]:
    """(overbooked slots, counter mismatches, reservations, pending holds, full slots) among
    ``slots``."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "with truth as ("
            "  select s.id, s.max_reservations, s.current_reservations, s.pending_requests,"
            "   (select count(*) from public.reservation as r"
            "    where r.slot_id = s.id and r.status <> 'cancelled') as reserved,"
            "   (select count(*) from public.reservation_request as q"
            "    where q.slot_id = s.id and q.status = 'pending') as held"
            "  from public.time_slot as s where s.id = any(%s::uuid[]))"
            " select"
            "  count(*) filter (where reserved + held > max_reservations"
            "   or current_reservations > max_reservations),"
            "  count(*) filter (where current_reservations <> reserved + held"
            "   or pending_requests <> held),"
            "  coalesce(sum(reserved), 0),"
            "  coalesce(sum(held), 0),"
            "  count(*) filter (where current_reservations = max_reservations)"
            " from truth",
            [slots],
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4])


def tpcb(bench: BenchCluster, scale: int) -> float:
    """pgbench TPC-B tps (without initial connection time) at ``scale``, CLIENTS clients."""
    dbname = f"tpcb_s{scale}"
    with psycopg.connect(bench.cluster.url(), autocommit=True) as admin:
        admin.execute(f"drop database if exists {dbname}")
        admin.execute(f"create database {dbname}")
    pgbench = str(find_bin_dir() / "pgbench")
    connection = pgbench_connection(bench)
    subprocess.run(
        [pgbench, "-i", "-q", "-s", str(scale), *connection, dbname],
        check=True,
        capture_output=True,
        text=True,
    )
    result = subprocess.run(
        [
            pgbench,
            "-n",
            "-c",
            str(CLIENTS),
            "-j",
            "2",
            "-T",
            str(TPCB_SECONDS),
            *connection,
            dbname,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.stdout)
    if not match:
        raise RuntimeError(f"could not read pgbench's tps from:\n{result.stdout}")
    return float(match.group(1))


def report(
    label: str, elapsed: float, latencies: list[float], bench_url: str, slots: list[str]
) -> tuple[float, bool]:
    overbooked, mismatches, reserved, held, full = audit(bench_url, slots)
    attempts_per_s = len(latencies) / elapsed
    print(
        f"contended booking via {label}: {CLIENTS} connections, {len(slots)} slots x {CAPACITY} "
        f"places, {len(latencies)} anonymous attempts in {elapsed:.2f} s"
    )
    print(
        f"  booking attempts/s: {attempts_per_s:.0f}   places taken: {reserved + held} "
        f"({reserved} confirmed, {held} pending; {(reserved + held) / elapsed:.0f}/s), "
        f"slots full: {full} of {len(slots)}"
    )
    print(
        f"  latency per attempt: p50 {percentile(latencies, 50) * 1000:.2f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.2f} ms"
    )
    print(f"  overbooked slots: {overbooked} (must be 0)")
    print(f"  counter mismatches: {mismatches} (must be 0)")
    return attempts_per_s, overbooked == 0 and mismatches == 0


def main() -> None:
    settings = {
        "shared_preload_libraries": "pg_stat_statements",
        "pg_stat_statements.track": "none",
    }
    with migrated_cluster(settings) as bench:
        set_up_pgbench(bench)
        success_rate, _ = book_every_place(bench, "success", SUCCESS_ATTEMPTS)

        slots = create_calendar(bench.url, "pgbench")
        elapsed, latencies = hammer_with_pgbench(bench, slots)
        rates = {}
        rates["pgbench"], sound = report("pgbench script", elapsed, latencies, bench.url, slots)

        slots = create_calendar(bench.url, "python")
        elapsed, tally = hammer(bench.url, slots)
        print(f"  (python outcomes: {dict(sorted(tally.outcomes.items()))})")
        rates["python"], python_sound = report(
            "python threads", elapsed, tally.latencies, bench.url, slots
        )
        sound = sound and python_sound

        for scale in TPCB_SCALES:
            tps = tpcb(bench, scale)
            print(
                f"pgbench TPC-B (scale {scale}, -c {CLIENTS} -j 2 -T {TPCB_SECONDS}): {tps:.0f} tps"
            )
            ratio = success_rate / tps
            target = f"target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'NOT met'}"
            print(
                f"  successful bookings/s / TPC-B tps = {ratio:.2f}"
                + (f" ({target})" if scale == TARGET_SCALE else "")
            )
            for label, rate in rates.items():
                print(f"  contended attempts/s via {label} / TPC-B tps = {rate / tps:.2f}")
        if PROFILE_ATTEMPTS >= CLIENTS:
            profile_success_path(bench)
        if not sound:
            raise SystemExit("booking benchmark found overbooking or counter mismatches")
