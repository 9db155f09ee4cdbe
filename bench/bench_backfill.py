"""The legacy-thread backfill end to end on a live-looking database: BENCH_BACKFILL_THREADS
legacy threads (default 1,000,000; 3 members and 5 messages each on average, made by
app.backfill.generate, not timed) backfilled by the real command path (app.backfill.run) at
the default batch size and pause, while a frontend keeps opening threads' last 50 messages and
another keeps posting messages into threads being migrated (each with a short think time
between statements, as people have).

Baseline, same run: the same tickets (the backfill's own plan, materialised beforehand and not
timed) inserted into a copy of the database by one set-based `insert ... select` under
app.source = 'backfill' with every trigger on: the cost of the database's own rules.

Targets: backfill <= 3 x baseline and <= 10 minutes; p99 of "open a thread's last 50 messages"
during the backfill <= 2 x its p99 before it (the same reader and writer for 30 s, without the
backfill: the frontends' own load is not the backfill's); no frontend statement waits on a
backfill lock longer than --lock-timeout (the longest message post is reported against it).

Environment: BENCH_BACKFILL_THREADS (default 1000000), BENCH_BACKFILL_BATCH_SIZE (1000),
BENCH_BACKFILL_PAUSE_MS (the command's default), BENCH_BACKFILL_LOCK_TIMEOUT_MS (2000, the default).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from typing import Any

import psycopg

from app.backfill import Options, run
from app.backfill.generate import generate_legacy_threads
from bench.common import median, migrated_cluster, percentile

THREADS = int(os.environ.get("BENCH_BACKFILL_THREADS", "1000000"))
BATCH_SIZE = int(os.environ.get("BENCH_BACKFILL_BATCH_SIZE", "1000"))
PAUSE_MS = int(os.environ.get("BENCH_BACKFILL_PAUSE_MS", str(Options.pause_ms)))
LOCK_TIMEOUT_MS = int(os.environ.get("BENCH_BACKFILL_LOCK_TIMEOUT_MS", "2000"))
TARGET_RATIO = 3.0
TARGET_SECONDS = 600.0
TARGET_P99_RATIO = 2.0

LAST_50 = (
    "select id, sender_id, body, created_at from public.chat_messages"
    " where thread_id = %s order by created_at desc limit 50"
)


def as_member(conn: psycopg.Connection[Any], user_id: Any) -> None:
    conn.execute("set local role authenticated")
    conn.execute(
        "select set_config('request.jwt.claims', %s, true)",
        [json.dumps({"sub": str(user_id), "role": "authenticated"})],
    )


class Frontend(threading.Thread):
    def __init__(self, url: str, samples: list[tuple[Any, Any]], write: bool) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(url, autocommit=True)
        self.samples = samples
        self.write = write
        self.stop = threading.Event()
        self.durations: list[float] = []
        self.refused = 0
        self.rng = random.Random(write)

    def run(self) -> None:
        while not self.stop.is_set():
            thread_id, member = self.rng.choice(self.samples)
            began = time.perf_counter()
            try:
                with self.conn.transaction():
                    as_member(self.conn, member)
                    if self.write:
                        self.conn.execute(
                            "insert into public.chat_messages (thread_id, body)"
                            " values (%s, 'live message during the backfill')",
                            [thread_id],
                        )
                    else:
                        self.conn.execute(LAST_50, [thread_id]).fetchall()
            except psycopg.Error:
                self.refused += 1  # a draft's thread (CH004) or a member no longer a party
            self.durations.append(time.perf_counter() - began)
            # A person opens a thread or writes now and then; a frontend that never pauses
            # would only measure the two cores being shared.
            time.sleep(0.02 if self.write else 0.005)


def sample_reads(url: str, samples: list[tuple[Any, Any]], seconds: float) -> list[float]:
    """The reader's durations over `seconds` of the same frontend traffic as during the
    backfill (a reader and a writer), without the backfill."""
    reader = Frontend(url, samples, write=False)
    writer = Frontend(url, samples, write=True)
    reader.start()
    writer.start()
    time.sleep(seconds)
    for frontend in (reader, writer):
        frontend.stop.set()
        frontend.join()
    return reader.durations


def main() -> None:
    print(f"{THREADS} legacy threads, batch {BATCH_SIZE}, pause {PAUSE_MS} ms", flush=True)
    # The baseline is one transaction over every ticket (850,000 at full size): linking a
    # prescription with Lifefile ids takes a transaction-level advisory lock on them (their
    # uniqueness check), about 100,000 in all, past the default lock table; a backfill batch
    # takes about 120.
    settings = {
        "shared_buffers": "512MB",
        "work_mem": "16MB",
        "max_wal_size": "4GB",
        "max_locks_per_transaction": "2048",
    }
    with migrated_cluster(settings) as bench:
        with psycopg.connect(bench.url, autocommit=True) as conn:
            began = time.monotonic()
            generated = generate_legacy_threads(conn, THREADS)
            print(f"generated in {time.monotonic() - began:.0f} s (not timed): {generated}")
            conn.execute("checkpoint")
        admin_url = bench.cluster.url()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute("create database carehub_baseline template carehub")
        baseline_url = bench.cluster.url("carehub_baseline")
        baseline = measure_baseline(baseline_url)
        print(f"baseline insert ... select: {baseline.seconds:.1f} s for {baseline.rows} tickets")

        with psycopg.connect(bench.url, autocommit=True) as conn:
            samples = conn.execute(
                "select m.thread_id, m.profile_id from public.chat_thread_members as m"
                " tablesample system (1) limit 2000"
            ).fetchall()
        before = sample_reads(bench.url, samples, 30)
        reader = Frontend(bench.url, samples, write=False)
        writer = Frontend(bench.url, samples, write=True)
        reader.start()
        writer.start()
        began = time.monotonic()
        summary = run(
            Options(
                database_url=bench.url,
                batch_size=BATCH_SIZE,
                pause_ms=PAUSE_MS,
                lock_timeout_ms=LOCK_TIMEOUT_MS,
                progress_every=50,
            )
        )
        seconds = time.monotonic() - began
        for frontend in (reader, writer):
            frontend.stop.set()
            frontend.join()
        with psycopg.connect(bench.url) as conn:
            steps = batch_steps(conn)

    p99_before = percentile([d * 1000 for d in before], 99)
    p99_during = percentile([d * 1000 for d in reader.durations], 99)
    longest_write = max(writer.durations, default=0.0) * 1000
    ratio = seconds / baseline.seconds if baseline.seconds else float("inf")
    print(
        f"\nbackfill: {seconds:.1f} s, {summary.threads_seen} threads seen, "
        f"{summary.tickets_created} tickets created, {summary.threads_linked} linked, "
        f"{summary.threads_skipped} skipped, {summary.batches} batches, "
        f"{summary.retries} retried"
    )
    print(f"  vs baseline {baseline.seconds:.1f} s: {ratio:.2f} x (target <= {TARGET_RATIO} x)")
    print(f"  wall time {seconds / 60:.1f} min (target <= {TARGET_SECONDS / 60:.0f} min)")
    tenth = max(1, len(steps) // 10)
    print(
        f"  batch + pause, median: first tenth {median(steps[:tenth]) * 1000:.0f} ms, last tenth "
        f"{median(steps[-tenth:]) * 1000:.0f} ms (does a batch cost more on a fuller database?)"
    )
    print(
        f"last 50 messages p99: {p99_before:.2f} ms before, {p99_during:.2f} ms during "
        f"({p99_during / p99_before:.2f} x, target <= {TARGET_P99_RATIO} x); "
        f"{len(before)} and {len(reader.durations)} samples"
    )
    print(
        f"message posts during the backfill: {len(writer.durations)}, longest "
        f"{longest_write:.0f} ms (lock timeout {LOCK_TIMEOUT_MS} ms), {writer.refused} refused "
        "by the rules (a draft's thread, a member no longer a party)"
    )
    met = (
        ratio <= TARGET_RATIO
        and seconds <= TARGET_SECONDS
        and p99_during <= TARGET_P99_RATIO * p99_before
        and longest_write <= LOCK_TIMEOUT_MS
    )
    print(f"\nbackfill targets {'met' if met else 'NOT met'}")


def batch_steps(conn: psycopg.Connection[Any]) -> list[float]:
    """Seconds between consecutive batches of the scan (each batch and the pause before it)."""
    rows = conn.execute(
        "select extract(epoch from finished_at - lag(finished_at) over (order by id))"
        " from private.backfill_batches where phase = 'scan' order by id"
    ).fetchall()
    return [float(r[0]) for r in rows if r[0] is not None]


class Baseline:
    def __init__(self, seconds: float, rows: int) -> None:
        self.seconds = seconds
        self.rows = rows


def measure_baseline(url: str) -> Baseline:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "create table public.bench_plan as"
            " select * from private.backfill_thread_plan('{}') with no data"
        )
        ids = [r[0] for r in conn.execute("select id from public.chat_threads order by id")]
        for start in range(0, len(ids), 20000):
            conn.execute(
                "insert into public.bench_plan select * from private.backfill_thread_plan(%s)"
                " where action = 'create'",
                [ids[start : start + 20000]],
            )
        conn.execute("analyze public.bench_plan")
        with conn.transaction():
            conn.execute("set local app.source = 'backfill'")
            began = time.monotonic()
            cursor = conn.execute(
                "insert into public.healthcare_tickets (id, ticket_type, status, patient_id,"
                " primary_provider_id, secondary_provider_id, appointment_id, prescription_id,"
                " title, created_by, created_at, updated_at, sent_at, closed_at,"
                " legacy_thread_id)"
                " select ticket_id, 'prescription', status, patient_id, primary_provider_id,"
                " secondary_provider_id, appointment_id, prescription_id, title, created_by,"
                " created_at, updated_at, sent_at, closed_at, thread_id"
                " from public.bench_plan"
            )
            rows = cursor.rowcount
        return Baseline(time.monotonic() - began, rows)
