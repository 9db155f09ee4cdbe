"""The worker loop: periodic jobs, NOTIFY wake-ups, failures, and a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import psycopg

from app.jobs import Job, Worker
from tests.helpers import CarehubProcess, TestDatabase


def wait_until(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_job_runs_at_start_and_again_when_notified(database: TestDatabase) -> None:
    runs: list[int] = []

    def count(conn: psycopg.Connection) -> int:
        runs.append(1)
        return 1

    worker = Worker(database.url, [Job("count", count, every=3600, channels=("wake_up",))])
    thread = threading.Thread(target=worker.run_forever)
    thread.start()
    try:
        assert wait_until(lambda: len(runs) == 1)
        database.connect().execute("notify wake_up")
        assert wait_until(lambda: len(runs) == 2)
    finally:
        worker.stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_failing_job_is_rolled_back_and_the_worker_goes_on(database: TestDatabase) -> None:
    conn = database.connect()
    conn.execute("create table public.job_log (n int)")
    conn.execute("alter table public.job_log enable row level security")

    def write_then_fail(job_conn: psycopg.Connection) -> int:
        job_conn.execute("insert into public.job_log values (1)")
        raise RuntimeError("boom")

    worker = Worker(database.url, [])
    with psycopg.connect(database.url, autocommit=True) as job_conn:
        assert worker.run_once(job_conn, Job("fails", write_then_fail, every=1)) is None
        assert job_conn.execute("select 1").fetchone() == (1,)
    assert conn.execute("select count(*) from public.job_log").fetchone() == (0,)


def test_a_job_with_its_own_transactions_keeps_what_it_committed(database: TestDatabase) -> None:
    conn = database.connect()
    conn.execute("create table public.job_log (n int)")
    conn.execute("alter table public.job_log enable row level security")

    def claim_then_fail(job_conn: psycopg.Connection) -> int:
        with job_conn.transaction():
            job_conn.execute("insert into public.job_log values (1)")
        assert not job_conn.info.transaction_status  # nothing open across the "call out"
        raise RuntimeError("the provider timed out")

    worker = Worker(database.url, [])
    with psycopg.connect(database.url, autocommit=True) as job_conn:
        job = Job("sends", claim_then_fail, every=1, own_transactions=True)
        assert worker.run_once(job_conn, job) is None
    assert conn.execute("select count(*) from public.job_log").fetchone() == (1,)


def test_worker_command_stops_cleanly_on_sigterm(database: TestDatabase) -> None:
    process = CarehubProcess("worker", env={**os.environ, "DATABASE_URL": database.url})
    process.wait_for_line("worker: started")  # signal handlers are in place by then
    assert process.stop(signal.SIGTERM) == 0, process.output
    process.wait_for_line("worker: SIGTERM received", timeout=0)
    process.wait_for_line("worker: stopped", timeout=0)


def _stops_within(env: dict[str, str], seconds: float, ready: str) -> None:
    process = CarehubProcess("worker", "--concurrency", "2", env=env)
    process.wait_for_line(ready)
    started = time.monotonic()
    assert process.stop(signal.SIGTERM, timeout=30) == 0, process.output
    assert time.monotonic() - started < seconds, process.output
    process.wait_for_line("worker: stopped", timeout=0)


def test_worker_stops_at_once_on_sigterm_while_backing_off_from_a_database_outage() -> None:
    # Nothing listens on the port: every lane fails to connect and backs off (1 s, 2 s, 4 s ...).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    _stops_within({**os.environ, "DATABASE_URL": url}, 3.0, "retrying in")


def test_worker_stops_at_once_on_sigterm_while_a_connection_attempt_hangs() -> None:
    # A server that accepts connections and never answers: connecting hangs (until its timeout).
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(64)
        port = black_hole.getsockname()[1]
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _stops_within({**os.environ, "DATABASE_URL": url}, 3.0, "worker: started")


def test_a_slow_job_never_holds_up_a_queue_job(database: TestDatabase) -> None:
    # The shape of a Twilio send stuck on the network beside Lifefile processing.
    slow_started = threading.Event()
    release = threading.Event()
    fast_runs: list[float] = []

    def slow(conn: psycopg.Connection) -> int:
        slow_started.set()
        release.wait(30)
        return 0

    def fast(conn: psycopg.Connection) -> int:
        fast_runs.append(time.monotonic())
        return 0

    worker = Worker(
        database.url,
        [
            Job("slow", slow, every=3600, queue=True),
            Job("fast", fast, every=3600, channels=("fast_work",), queue=True),
        ],
        concurrency=2,
    )
    thread = threading.Thread(target=worker.run_forever)
    thread.start()
    try:
        assert slow_started.wait(20)
        assert wait_until(lambda: len(fast_runs) >= 2)  # one per lane at start
        before = len(fast_runs)
        database.connect().execute("notify fast_work")
        assert wait_until(lambda: len(fast_runs) > before, timeout=5)
    finally:
        release.set()
        worker.request_stop()
        thread.join(timeout=10)
    assert not thread.is_alive()
