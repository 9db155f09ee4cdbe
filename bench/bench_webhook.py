"""Lifefile webhook ingestion under the production server.

`carehub serve` (gunicorn, WORKERS processes) on a throwaway, durable cluster (fsync and
synchronous commit on, as production); a load generator on loopback. Same run, same server:

1. ceiling: GET /api/webhooks/lifefile/prescription-status (the health check: one `select 1`
   through the pool, no write), closed loop over CONNECTIONS keep-alive connections;
2. throughput: POST of distinct signed events (seed 001's shape), each stored and committed
   before its 202, closed loop over the same connections: stored events/s;
3. latency at the target rate: the same POSTs offered open-loop at TARGET_RATE/s (each request
   has a scheduled send time and its latency counts from then, so a stalled server cannot hide
   its queue), p50/p99.

Checks that every 202 is an inbox row (zero lost). Each phase is bounded by count and time.
Target: >= 500 stored events/s, p99 <= 50 ms, zero lost.

4. the shared rate limit's cost: phases 2 and 3 run again against a second server whose
   LIFEFILE_RATE_LIMIT is on but never reached (every request takes a token from the database
   bucket private.take_webhook_token; one load generator means one client address, so every
   request contends for the same bucket row — the worst case), against phase 2's figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg

from app.localdb import free_port
from app.webhooks.lifefile import PATH
from app.webhooks.lifefile_auth import sign
from bench.common import migrated_cluster, percentile

WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", 2))
THREADS = int(os.environ.get("BENCH_WEB_THREADS", 8))
CONNECTIONS = 16
EVENTS = 6000
TARGET_RATE = 500
PACED_SECONDS = 10
PACED_CONNECTIONS = 16
TIME_LIMIT_SECONDS = 30.0
WARMUP = 300
SECRET = "bench-lifefile-secret"  # noqa: S105


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    # Open loop only: from the moment the request was actually sent (the load generator can
    # itself be late on this shared two-core machine; that lateness is in latencies).
    service_times: list[float] = field(default_factory=list)
    codes: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


Request = tuple[str, str, bytes | None, dict[str, str]]


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: the load generator is one thread
    and spends as little CPU as it can, since it shares the machine with the server."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def encode_request(request: Request) -> bytes:
    method, path, body, headers = request
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def drive(port: int, requests: list[Request], connections: int, limit: float) -> Run:
    """Closed loop: ``connections`` connections each send their next request as soon as the
    previous one is answered, until the requests run out or ``limit`` seconds pass."""
    raw = [encode_request(r) for r in requests]
    run = Run()

    async def client(cursor: Iterator[int], deadline: float) -> None:
        conn = Connection(port)
        try:
            for index in cursor:
                if time.perf_counter() > deadline:
                    break
                started = time.perf_counter()
                status = await conn.request(raw[index])
                run.latencies.append(time.perf_counter() - started)
                run.codes[status] = run.codes.get(status, 0) + 1
        finally:
            conn.close()

    async def all_clients() -> None:
        cursor = iter(range(len(raw)))
        started = time.perf_counter()
        await asyncio.gather(*(client(cursor, started + limit) for _ in range(connections)))
        run.elapsed = time.perf_counter() - started

    asyncio.run(all_clients())
    return run


def drive_paced(port: int, requests: list[Request], rate: float, connections: int) -> Run:
    """Open loop: request i is due at start + i / rate, whether or not earlier ones have been
    answered (up to ``connections`` in flight); its latency counts from when it was due, so a
    stalled server cannot hide its queue."""
    raw = [encode_request(r) for r in requests]
    run = Run()

    async def client(cursor: Iterator[int], start: float) -> None:
        conn = Connection(port)
        try:
            for index in cursor:
                due = start + index / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent = time.perf_counter()
                status = await conn.request(raw[index])
                done = time.perf_counter()
                run.latencies.append(done - due)
                run.service_times.append(done - sent)
                run.codes[status] = run.codes.get(status, 0) + 1
        finally:
            conn.close()

    async def all_clients() -> None:
        cursor = iter(range(len(raw)))
        start = time.perf_counter() + 0.05
        await asyncio.gather(*(client(cursor, start) for _ in range(connections)))
        run.elapsed = time.perf_counter() - start

    asyncio.run(all_clients())
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


def start_server(url: str, port: int, rate_limit: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "LIFEFILE_WEBHOOK_SECRET": SECRET,
        "LIFEFILE_RATE_LIMIT": rate_limit,
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
    wait_until(lambda: _healthy(port))
    return server


def measure_rate_limit_cost(url: str, baseline: Run) -> None:
    port = free_port()
    server = start_server(url, port, "100000000/second")
    try:
        drive(port, [signed_event(-n) for n in range(WARMUP, 2 * WARMUP)], CONNECTIONS, 30.0)
        limited = drive(
            port,
            [signed_event(3 * EVENTS + n) for n in range(EVENTS)],
            CONNECTIONS,
            TIME_LIMIT_SECONDS,
        )
        report("throughput, rate limit on", limited)
        paced_events = [signed_event(4 * EVENTS + n) for n in range(TARGET_RATE * PACED_SECONDS)]
        paced = drive_paced(port, paced_events, TARGET_RATE, PACED_CONNECTIONS)
        report(f"latency at {TARGET_RATE}/s, rate limit on", paced)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print(
        f"rate limit cost: stored events/s {limited.rate:.0f} with vs {baseline.rate:.0f} "
        f"without = {limited.rate / baseline.rate:.2f}; p50 at {TARGET_RATE}/s "
        f"{percentile(paced.latencies, 50) * 1000:.2f} ms, p99 "
        f"{percentile(paced.latencies, 99) * 1000:.2f} ms",
        flush=True,
    )


def main() -> None:
    with migrated_cluster() as bench:
        port = free_port()
        server = start_server(bench.url, port, "off")
        try:
            print(
                f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} "
                "(other work on this machine shares them)",
                flush=True,
            )
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
            stored = drive(
                port, [signed_event(n) for n in range(EVENTS)], CONNECTIONS, TIME_LIMIT_SECONDS
            )
            report("throughput: signed POST, stored", stored)
            paced_events = [signed_event(EVENTS + n) for n in range(TARGET_RATE * PACED_SECONDS)]
            paced = drive_paced(port, paced_events, TARGET_RATE, PACED_CONNECTIONS)
            report(f"latency: POST offered at {TARGET_RATE}/s", paced)
            print(
                f"{'  same, from the actual send':34} p50 "
                f"{percentile(paced.service_times, 50) * 1000:6.2f} ms   p99 "
                f"{percentile(paced.service_times, 99) * 1000:6.2f} ms",
                flush=True,
            )

            with psycopg.connect(bench.url) as conn:
                row = conn.execute(
                    "select count(*), count(distinct dedupe_key)"
                    " from private.lifefile_webhook_events"
                ).fetchone()
            assert row is not None
            sent = len(stored.latencies) + len(paced.latencies)
            accepted = stored.codes.get(202, 0) + paced.codes.get(202, 0)
            lost = accepted - row[0]
            print(
                f"POSTs answered: {sent}; accepted (202): {accepted}; in the inbox: {row[0]} "
                f"({row[1]} distinct); lost: {lost}",
                flush=True,
            )
            print(f"load average at the end: {os.getloadavg()[0]:.2f}", flush=True)
            p99 = percentile(paced.latencies, 99) * 1000
            print(
                f"stored events/s vs the same server's ceiling: {stored.rate:.0f} / "
                f"{ceiling.rate:.0f} = {stored.rate / ceiling.rate:.2f}\n"
                f"target >= 500 stored events/s: {'met' if stored.rate >= 500 else 'NOT met'}; "
                f"p99 <= 50 ms at {TARGET_RATE}/s: {'met' if p99 <= 50 else 'NOT met'} "
                f"({p99:.1f} ms); zero lost: "
                f"{'met' if lost == 0 and accepted == sent else 'NOT met'}",
                flush=True,
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        measure_rate_limit_cost(bench.url, stored)
        measure_processing(bench.url)


PROCESSED = 2000

# One doctor, patient and pharmacy; PROCESSED sent prescription tickets with Lifefile order ids
# PROC-1..n (their tracking rows follow by trigger); one stored 'order_processing' push each.
PROCESSING_SETUP = """
insert into auth.users (id, aud, role, email, raw_app_meta_data, created_at, updated_at)
values
('b0000000-0000-4000-8000-000000000001', 'authenticated', 'authenticated', 'doc@bench.test',
 '{"role": "doctor"}', now(), now()),
('b0000000-0000-4000-8000-000000000002', 'authenticated', 'authenticated', 'pat@bench.test',
 '{"role": "patient"}', now(), now()),
('b0000000-0000-4000-8000-000000000003', 'authenticated', 'authenticated', 'rx@bench.test',
 '{"role": "pharmacist"}', now(), now());
insert into public.providers (id, kind, name) values
('b1000000-0000-4000-8000-000000000001', 'doctor', 'Bench Practice'),
('b1000000-0000-4000-8000-000000000002', 'pharmacy', 'Bench Pharmacy');
insert into public.provider_members (provider_id, profile_id, member_role) values
('b1000000-0000-4000-8000-000000000001', 'b0000000-0000-4000-8000-000000000001', 'owner'),
('b1000000-0000-4000-8000-000000000002', 'b0000000-0000-4000-8000-000000000003', 'owner');
insert into public.prescriptions (doctor_id, pharmacy_id, patient_id, external_order_id)
select 'b0000000-0000-4000-8000-000000000001', 'b1000000-0000-4000-8000-000000000002',
    'b0000000-0000-4000-8000-000000000002', 'PROC-' || g
from generate_series(1, %(n)s) as g;
insert into public.healthcare_tickets (ticket_type, status, patient_id, primary_provider_id,
    secondary_provider_id, prescription_id)
select 'prescription', 'sent', p.patient_id, 'b1000000-0000-4000-8000-000000000001',
    p.pharmacy_id, p.id
from public.prescriptions as p where p.external_order_id like 'PROC-%%';
select count(*) from generate_series(1, %(n)s) as g
cross join lateral private.receive_lifefile_delivery(
    jsonb_build_object(
        'prescription', jsonb_build_object('orderId', 'PROC-' || g),
        'status', jsonb_build_object('current', 'order_processing',
            'changedAt', '2026-11-21T12:00:00Z')
    )::text, '{}', 'bench');
"""


def measure_processing(url: str) -> None:
    """The worker's side: how fast the inbox becomes tracking, history, ticket status, timeline
    and notifications (the job's own SQL call, in batches of 100, one connection)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("delete from private.lifefile_webhook_events")  # the unmatched load above
        # Several statements: simple query protocol, so the count is written in, not bound.
        conn.execute(PROCESSING_SETUP.replace("%(n)s", str(PROCESSED)).replace("%%", "%"))
        started = time.perf_counter()
        done = 0
        while True:
            row = conn.execute("select private.process_lifefile_events(100)").fetchone()
            assert row is not None
            if row[0] == 0:
                break
            done += row[0]
        elapsed = time.perf_counter() - started
        moved = conn.execute(
            "select count(*) from public.healthcare_tickets where status = 'processing'"
        ).fetchone()
        notified = conn.execute(
            "select count(*) from public.notifications where type = 'prescription_processing'"
        ).fetchone()
    print(
        f"worker: processed {done} events in {elapsed:.2f} s = {done / elapsed:.0f}/s "
        f"(tickets moved: {moved[0] if moved else 0}; notifications: "
        f"{notified[0] if notified else 0})",
        flush=True,
    )


if __name__ == "__main__":
    main()
