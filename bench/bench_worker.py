"""The worker keeping up with the service: `carehub serve` plus WORKERS `carehub worker
--concurrency CONCURRENCY` processes on one durable throwaway cluster, Lifefile pushes offered
open-loop at RATE/s for SECONDS.

The pushes are for ORDERS sent prescription tickets (each order's statuses in turn, so they
match and move tickets, write tracking, history, timeline and notifications). Once a second the
backlog (pending events) is sampled. Reported, from the same run: the service's stored events/s
(202s over the offered phase), the workers' processed events/s over the same phase, the backlog
(max, at the end) and the time to drain what was left. Then the workers' capacity alone: a
backlog of DRAIN events for fresh orders stored at once, and how fast the same workers drain it
with the service idle (on a shared two-core machine, service and workers split the CPU).
Target: backlog bounded (no growth over the run); worker throughput >= stored events/s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import psycopg

from app.localdb import free_port
from app.webhooks.lifefile import PATH
from app.webhooks.lifefile_auth import sign
from bench.bench_webhook import (
    PACED_CONNECTIONS,
    SECRET,
    Request,
    drive_paced,
    report,
    start_server,
)
from bench.common import migrated_cluster

WORKERS = int(os.environ.get("BENCH_WORKERS", 2))
CONCURRENCY = int(os.environ.get("BENCH_WORKER_CONCURRENCY", 2))
RATE = float(os.environ.get("BENCH_WORKER_RATE", 400))
SECONDS = float(os.environ.get("BENCH_WORKER_SECONDS", 60))
ORDERS = 3000
DRAIN = 3000  # fresh orders W-ORDERS … for the capacity phase
STEPS = ["RECEIVED", "PROCESSING", "READY_FOR_PICKUP", "SHIPPED", "OUT_FOR_DELIVERY", "DELIVERED"]

SETUP = """
insert into auth.users (id, aud, role, email, raw_app_meta_data, created_at, updated_at)
values
('c0000000-0000-4000-8000-000000000001', 'authenticated', 'authenticated', 'doc@w.test',
 '{"role": "doctor"}', now(), now()),
('c0000000-0000-4000-8000-000000000002', 'authenticated', 'authenticated', 'pat@w.test',
 '{"role": "patient"}', now(), now()),
('c0000000-0000-4000-8000-000000000003', 'authenticated', 'authenticated', 'rx@w.test',
 '{"role": "pharmacist"}', now(), now());
insert into public.providers (id, kind, name) values
('c1000000-0000-4000-8000-000000000001', 'doctor', 'Worker Bench Practice'),
('c1000000-0000-4000-8000-000000000002', 'pharmacy', 'Worker Bench Pharmacy');
insert into public.provider_members (provider_id, profile_id, member_role) values
('c1000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001', 'owner'),
('c1000000-0000-4000-8000-000000000002', 'c0000000-0000-4000-8000-000000000003', 'owner');
insert into public.prescriptions (doctor_id, pharmacy_id, patient_id, external_order_id)
select 'c0000000-0000-4000-8000-000000000001', 'c1000000-0000-4000-8000-000000000002',
    'c0000000-0000-4000-8000-000000000002', 'W-' || g
from generate_series(0, {orders} - 1) as g;
insert into public.healthcare_tickets (ticket_type, status, patient_id, primary_provider_id,
    secondary_provider_id, prescription_id)
select 'prescription', 'sent', p.patient_id, 'c1000000-0000-4000-8000-000000000001',
    p.pharmacy_id, p.id
from public.prescriptions as p where p.external_order_id like 'W-%';
"""


def push(n: int) -> Request:
    """Push n: order n mod ORDERS, that order's next status (distinct changedAt: a new event)."""
    order, step = n % ORDERS, (n // ORDERS) % len(STEPS)
    body = json.dumps(
        [
            {
                "orderId": f"W-{order}",
                "rxStatus": STEPS[step],
                "changedAt": f"2026-11-21T12:00:00.{n:06d}Z",
            }
        ]
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "x-lifefile-timestamp": timestamp,
        "x-lifefile-signature": sign(SECRET, body, timestamp),
    }
    return ("POST", PATH, body, headers)


class Sampler(threading.Thread):
    """Once a second: the backlog (pending events) and how many were processed."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.samples: list[tuple[float, int, int]] = []
        self.stop = threading.Event()

    def count(self) -> tuple[int, int]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(
                "select count(*) filter (where status = 'pending'),"
                " count(*) filter (where status = 'processed')"
                " from private.lifefile_webhook_events"
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def run(self) -> None:
        while not self.stop.wait(1.0):
            self.samples.append((time.perf_counter(), *self.count()))


def measure_capacity(url: str) -> None:
    texts = [
        json.dumps({"orderId": f"W-{ORDERS + n}", "rxStatus": "RECEIVED"}) for n in range(DRAIN)
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "select count(*) from private.receive_lifefile_delivery(%s, '{}', 'bench', %s, null)",
            ["[" + ",".join(texts) + "]", texts],
        )
        started = time.perf_counter()
        conn.execute("select pg_notify('lifefile_webhook_events', 'bench')")
        while True:
            row = conn.execute(
                "select count(*) from private.lifefile_webhook_events where status = 'pending'"
            ).fetchone()
            if row == (0,):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    print(
        f"capacity alone: {WORKERS} workers x {CONCURRENCY} lanes drained {DRAIN} events "
        f"(each moving a ticket) in {elapsed:.2f} s = {DRAIN / elapsed:.0f}/s, service idle",
        flush=True,
    )


def main() -> None:
    with migrated_cluster() as bench:
        with psycopg.connect(bench.url, autocommit=True) as conn:
            conn.execute(SETUP.replace("{orders}", str(ORDERS + DRAIN)))
        port = free_port()
        server = start_server(bench.url, port, "off")
        env = {**os.environ, "DATABASE_URL": bench.url}
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "app", "worker", "--concurrency", str(CONCURRENCY)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(WORKERS)
        ]
        sampler = Sampler(bench.url)
        try:
            print(
                f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
                f"service + {WORKERS} worker processes x concurrency {CONCURRENCY}; "
                f"pushes offered at {RATE:.0f}/s for {SECONDS:.0f} s over {ORDERS} orders",
                flush=True,
            )
            time.sleep(2)  # workers connected and listening
            sampler.start()
            started = time.perf_counter()
            pushes = [push(n) for n in range(int(RATE * SECONDS))]
            run = drive_paced(port, pushes, RATE, PACED_CONNECTIONS)
            elapsed = time.perf_counter() - started
            _, processed_in_run = sampler.count()
            report(f"service: pushes offered at {RATE:.0f}/s", run)
            stored = run.codes.get(202, 0)
            drained_at = None
            deadline = time.perf_counter() + 120
            while time.perf_counter() < deadline:
                backlog, _processed = sampler.count()
                if backlog == 0:
                    drained_at = time.perf_counter()
                    break
                time.sleep(0.2)
            sampler.stop.set()
            backlogs = [b for _, b, _ in sampler.samples]
            half = len(backlogs) // 2
            first_half = max(backlogs[:half], default=0)
            second_half = max(backlogs[half:], default=0)
            print(
                f"stored {stored} events in {elapsed:.1f} s = {stored / elapsed:.0f}/s; "
                f"processed in the same time: {processed_in_run} = "
                f"{processed_in_run / elapsed:.0f}/s",
                flush=True,
            )
            print(
                f"backlog: max {max(backlogs, default=0)} (first half {first_half}, second "
                f"half {second_half}), at the end of the offered phase "
                f"{stored - processed_in_run}; drained "
                + (
                    f"{drained_at - started - elapsed:.1f} s after it"
                    if drained_at
                    else "NOT within 120 s"
                ),
                flush=True,
            )
            with psycopg.connect(bench.url, autocommit=True) as conn:
                row = conn.execute(
                    "select count(*) filter (where status = 'processed'), count(*),"
                    " count(*) filter (where attempts > 1)"
                    " from private.lifefile_webhook_events"
                ).fetchone()
            assert row is not None
            print(
                f"inbox: {row[1]} events, {row[0]} processed, {row[2]} processed more than once",
                flush=True,
            )
            total_rate = row[0] / ((drained_at or time.perf_counter()) - started)
            # Bounded: the second half's worst backlog is no worse than the first half's (or
            # than one second of offered load); keeping up: at the end, under a second behind.
            bounded = second_half <= max(first_half * 1.5, RATE)
            keeping_up = stored - processed_in_run <= RATE
            print(
                f"target backlog bounded: {'met' if bounded else 'NOT met'}; worker throughput "
                f"{processed_in_run / elapsed:.0f}/s (all {row[0]} at {total_rate:.0f}/s) "
                f">= stored {stored / elapsed:.0f}/s: {'met' if keeping_up else 'NOT met'}",
                flush=True,
            )
            measure_capacity(bench.url)
        finally:
            sampler.stop.set()
            for process in [server, *workers]:
                process.send_signal(signal.SIGTERM)
            for process in [server, *workers]:
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
