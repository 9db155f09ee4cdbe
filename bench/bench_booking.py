"""Booking under contention, against pgbench's TPC-B on the same cluster in the same run.

32 connections make 20,000 booking attempts (request_reservation as anon, as PostgREST runs it:
one transaction that sets the role and claims, then calls the function) on 500 slots of
capacity 3 whose practitioner confirms at once, so each success runs the whole path: hold,
approval, reservation. Most attempts meet a full slot and get CH002, as on a popular calendar.

The attempts are made twice, each time on a fresh calendar: by pgbench running a custom script
(the same C client as the TPC-B baseline, so the ratio compares database work, not clients; a
bench-only wrapper catches CH002/CH005 because pgbench 15 stops a client at any other error),
and by 32 Python threads with psycopg (what a Python service would see). Then pgbench
initialises TPC-B and runs it with the same client count. Target: booking attempts/s at least
half of TPC-B's tps, zero overbooked slots, zero counter mismatches.

Environment: BENCH_CLIENTS (32), BENCH_SLOTS (500), BENCH_CAPACITY (3), BENCH_ATTEMPTS
(20000), BENCH_TPCB_SECONDS (30), BENCH_TPCB_SCALES (comma list of pgbench -s values, "1,32":
plain `pgbench -i` is scale 1, where every client updates the one branch row; scale 32 gives
the clients 32 branches, the fairer and stricter baseline).
"""

from __future__ import annotations

import itertools
import json
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
SLOTS = int(os.environ.get("BENCH_SLOTS", "500"))
CAPACITY = int(os.environ.get("BENCH_CAPACITY", "3"))
ATTEMPTS = int(os.environ.get("BENCH_ATTEMPTS", "20000"))
TPCB_SECONDS = int(os.environ.get("BENCH_TPCB_SECONDS", "30"))
TPCB_SCALES = [int(s) for s in os.environ.get("BENCH_TPCB_SCALES", "1,32").split(",") if s]

ANON_CLAIMS = json.dumps({"role": "anon"})
# What PostgREST runs at the start of each request's transaction.
START_REQUEST = (
    "select set_config('role', 'anon', true), set_config('request.jwt.claims', %s, true)"
)
BOOK = "select public.request_reservation(%s, %s, %s)"


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, outcome: str) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def create_calendar(url: str, label: str) -> list[str]:
    """A practitioner who confirms at once, one service, SLOTS slots of CAPACITY places."""
    with psycopg.connect(url, autocommit=True) as conn:
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
        first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        rows = conn.execute(
            "insert into public.time_slot (profile_id, service_id, start_time, end_time,"
            " max_reservations)"
            " select %(d)s, %(s)s, %(t)s + n * interval '30 minutes',"
            " %(t)s + (n + 1) * interval '30 minutes', %(c)s"
            " from generate_series(0, %(n)s - 1) as n returning id",
            {"d": doctor[0], "s": service[0], "t": first, "n": SLOTS, "c": CAPACITY},
        ).fetchall()
        conn.execute("vacuum analyze")
    return [str(row[0]) for row in rows]


# Bench-only objects (never in migrations): the slots by number, and a wrapper that turns the
# expected refusals into a result, since pgbench 15 ends a client at any error but
# serialization failures and deadlocks. It costs one subtransaction per attempt.
PGBENCH_SETUP = """
create schema bench;
create table bench.slot (n integer primary key, id uuid not null);
create function bench.try_request(p_slot_id uuid, p_phone text)
returns text
language plpgsql
set search_path = ''
as $fn$
begin
    perform public.request_reservation(p_slot_id, 'Bench Patient', p_phone);
    return 'ok';
exception when sqlstate 'CH002' or sqlstate 'CH005' then
    return sqlstate;
end
$fn$;
grant usage on schema bench to anon;
grant select on bench.slot to anon;
grant execute on function bench.try_request(uuid, text) to anon;
"""

PGBENCH_SCRIPT = """\\set n random(1, {slots})
\\set phone random(1000000, 9999999)
begin;
select set_config('role', 'anon', true), set_config('request.jwt.claims', '{claims}', true);
select bench.try_request((select id from bench.slot where n = :n), '+3460' || :phone);
commit;
"""


def pgbench_connection(bench: BenchCluster) -> list[str]:
    target = conninfo_to_dict(bench.url)
    return ["-h", str(target["host"]), "-p", str(target["port"]), "-U", "postgres"]


def hammer_with_pgbench(bench: BenchCluster, slots: list[str]) -> tuple[float, list[float]]:
    """Run the attempts with pgbench; returns (elapsed seconds, per-attempt latencies)."""
    with psycopg.connect(bench.url, autocommit=True) as conn:
        conn.execute(PGBENCH_SETUP)
        with conn.cursor() as cur:
            cur.executemany(
                "insert into bench.slot (n, id) values (%s, %s)", list(enumerate(slots, start=1))
            )
    workdir = Path(tempfile.mkdtemp(prefix="carehub-bench-booking-"))
    script = workdir / "booking.sql"
    script.write_text(PGBENCH_SCRIPT.format(slots=len(slots), claims=ANON_CLAIMS))
    per_client = ATTEMPTS // CLIENTS
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
        check=True,
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    elapsed = time.perf_counter() - started
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.stdout)
    latencies = [
        int(line.split()[2]) / 1e6
        for log in workdir.glob("log.*")
        for line in log.read_text().splitlines()
    ]
    shutil.rmtree(workdir, ignore_errors=True)
    if match:  # pgbench's own clock excludes connection set-up
        elapsed = len(latencies) / float(match.group(1))
    return elapsed, latencies


def hammer(url: str, slots: list[str]) -> tuple[float, Tally]:
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
                phone = f"+3460{attempt:07d}"
                started = time.perf_counter()
                try:
                    conn.execute(START_REQUEST, [ANON_CLAIMS])
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


def audit(url: str, slots: list[str]) -> tuple[int, int, int, int]:
    """(overbooked slots, counter mismatches, reservations, full slots) among ``slots``."""
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
            "  count(*) filter (where current_reservations = max_reservations)"
            " from truth",
            [slots],
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


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
    overbooked, mismatches, reserved, full = audit(bench_url, slots)
    attempts_per_s = len(latencies) / elapsed
    print(
        f"booking via {label}: {CLIENTS} connections, {len(slots)} slots x {CAPACITY} "
        f"places, {len(latencies)} attempts in {elapsed:.2f} s"
    )
    print(
        f"  booking attempts/s: {attempts_per_s:.0f}   successful bookings: {reserved} "
        f"({reserved / elapsed:.0f}/s), slots full: {full} of {len(slots)}"
    )
    print(
        f"  latency per attempt: p50 {percentile(latencies, 50) * 1000:.2f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.2f} ms"
    )
    print(f"  overbooked slots: {overbooked} (must be 0)")
    print(f"  counter mismatches: {mismatches} (must be 0)")
    return attempts_per_s, overbooked == 0 and mismatches == 0


def main() -> None:
    with migrated_cluster() as bench:
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
            for label, rate in rates.items():
                ratio = rate / tps
                verdict = "met" if ratio >= 0.5 else "NOT met"
                print(
                    f"  booking attempts/s via {label} / TPC-B tps = {ratio:.2f} "
                    f"(target >= 0.5: {verdict})"
                )
        if not sound:
            raise SystemExit("booking benchmark found overbooking or counter mismatches")
