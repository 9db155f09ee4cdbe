"""Lifefile webhook ingestion under the production server.

`carehub serve` (gunicorn, WORKERS processes) on a throwaway, durable cluster (fsync and
synchronous commit on, as production); a load generator on loopback keeps CONNECTIONS
keep-alive connections busy. Same run, same server:

1. ceiling: GET /api/webhooks/lifefile/prescription-status (the health check: one `select 1`
   through the pool, no write);
2. events: POST of distinct signed events (seed 001's shape), each stored and committed before
   its 202.

Reports requests/s and p50/p99 latency of each, their ratio, and checks that every 202 is an
inbox row (zero lost). Bounded by count and by time. Target: >= 500 stored events/s,
p99 <= 50 ms, zero lost.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from app.localdb import free_port
from app.webhooks.lifefile import PATH
from app.webhooks.lifefile_auth import sign
from bench.common import migrated_cluster, percentile

WORKERS = 2
THREADS = 8
CONNECTIONS = 8
EVENTS = 6000
TIME_LIMIT_SECONDS = 30.0
WARMUP = 300
SECRET = "bench-lifefile-secret"  # noqa: S105


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    codes: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


Request = tuple[str, str, bytes | None, dict[str, str]]


def drive(port: int, requests: list[Request], connections: int, limit: float) -> Run:
    """Send ``requests`` over ``connections`` keep-alive connections; stop at ``limit`` s."""
    run = Run()
    lock = threading.Lock()
    cursor = iter(range(len(requests)))
    barrier = threading.Barrier(connections + 1)
    deadline = [0.0]

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies: list[float] = []
        codes: dict[int, int] = {}
        barrier.wait()
        while time.perf_counter() < deadline[0]:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            method, path, body, headers = requests[index]
            started = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            latencies.append(time.perf_counter() - started)
            codes[response.status] = codes.get(response.status, 0) + 1
        conn.close()
        with lock:
            run.latencies.extend(latencies)
            for code, count in codes.items():
                run.codes[code] = run.codes.get(code, 0) + count

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline[0] = started + limit
    barrier.wait()
    for thread in threads:
        thread.join()
    run.elapsed = time.perf_counter() - started
    return run


def signed_event(n: int) -> Request:
    body = json.dumps(
        {
            "eventType": "prescription.status.update",
            "timestamp": "2026-11-21T12:00:00Z",
            "prescription": {
                "rxNumber": f"RX{n:07d}",
                "orderId": f"BENCH-{n}",
                "medicationName": "Amoxicillin 500 mg",
                "quantity": 30,
            },
            "status": {
                "current": "order_shipped",
                "previous": "order_processing",
                "changedAt": "2026-11-21T12:00:00Z",
            },
            "tracking": {"trackingNumber": f"1Z{n:012d}", "carrier": "UPS"},
        }
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "x-lifefile-timestamp": timestamp,
        "x-lifefile-signature": "sha256=" + sign(SECRET, body, timestamp),
    }
    return ("POST", PATH, body, headers)


def report(name: str, run: Run) -> None:
    print(
        f"{name:34} {len(run.latencies):6d} requests in {run.elapsed:5.2f} s = "
        f"{run.rate:7.0f}/s   p50 {percentile(run.latencies, 50) * 1000:6.2f} ms   "
        f"p99 {percentile(run.latencies, 99) * 1000:6.2f} ms   "
        f"codes {dict(sorted(run.codes.items()))}",
        flush=True,
    )


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("the service did not start")
        time.sleep(0.1)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def main() -> None:
    with migrated_cluster() as bench:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": bench.url,
            "LIFEFILE_WEBHOOK_SECRET": SECRET,
            "LIFEFILE_RATE_LIMIT": "off",
            "DB_POOL_MAX_SIZE": str(THREADS),
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(WORKERS),
                "--threads",
                str(THREADS),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: _healthy(port))
            print(
                f"gunicorn: {WORKERS} processes x {THREADS} threads; {CONNECTIONS} keep-alive "
                f"connections from one load generator on loopback; at most {EVENTS} requests "
                f"or {TIME_LIMIT_SECONDS:.0f} s per phase; cluster with fsync and "
                "synchronous_commit on",
                flush=True,
            )
            health: Request = ("GET", PATH, None, {})
            drive(
                port,
                [health] * WARMUP + [signed_event(-n) for n in range(1, WARMUP)],
                CONNECTIONS,
                TIME_LIMIT_SECONDS,
            )
            with psycopg.connect(bench.url, autocommit=True) as conn:
                conn.execute("delete from private.lifefile_webhook_events")

            ceiling = drive(port, [health] * EVENTS, CONNECTIONS, TIME_LIMIT_SECONDS)
            report("ceiling: GET health (select 1)", ceiling)
            events = [signed_event(n) for n in range(EVENTS)]
            stored = drive(port, events, CONNECTIONS, TIME_LIMIT_SECONDS)
            report("events: signed POST, stored", stored)

            with psycopg.connect(bench.url) as conn:
                row = conn.execute(
                    "select count(*), count(distinct dedupe_key)"
                    " from private.lifefile_webhook_events"
                ).fetchone()
            accepted = stored.codes.get(202, 0)
            assert row is not None
            lost = accepted - row[0]
            print(
                f"accepted (202): {accepted}; in the inbox: {row[0]} ({row[1]} distinct); "
                f"lost: {lost}; other responses: "
                f"{ {c: n for c, n in stored.codes.items() if c != 202} }",
                flush=True,
            )
            p99 = percentile(stored.latencies, 99) * 1000
            print(
                f"stored events/s vs ceiling: {stored.rate:.0f} / {ceiling.rate:.0f} = "
                f"{stored.rate / ceiling.rate:.2f}; target >= 500/s: "
                f"{'met' if stored.rate >= 500 else 'NOT met'}; p99 <= 50 ms: "
                f"{'met' if p99 <= 50 else 'NOT met'} ({p99:.1f} ms); zero lost: "
                f"{'met' if lost == 0 and accepted == len(stored.latencies) else 'NOT met'}",
                flush=True,
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
