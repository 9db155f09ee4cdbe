"""Patient messaging: the outbox's cost on the write path, dispatch through Twilio (the local
double), and status callbacks stored per second.

(a) write path: p50 of a prescription ticket status update (sent -> received, one statement,
    autocommit) with the default rules active against the same update with every rule
    is_active = false, interleaved in batches in the same run. Target <= 1.3x.
(b) dispatch: MESSAGES queued SMS sent by `carehub worker`'s send job (WORKER_LANES lanes) to
    the local Twilio double answering in 100 ms, TWILIO_MAX_SENDS_PER_SECOND = RATE; the double
    sends status callbacks meanwhile. Target >= 0.9 x RATE, zero duplicates, zero lost.
(c) callbacks: signed status callbacks POSTed to `carehub serve` (gunicorn) and stored, per
    second, against the same server's ceiling (GET /healthz). Target >= 0.5 x the ceiling.
(d) what the patient feels: signed Lifefile SHIPPED pushes offered open-loop at E2E_RATE/s for
    E2E_SECONDS to `carehub serve`, processed by `carehub worker` (a subprocess, its send job
    pointed at the double, 200 sends/s), until the SMS reaches the double: p50/p99 from the
    push's due time to the double's receipt. Recipients consent, in a daytime zone. Target
    p99 <= 2 s.

Sizes shrink with BENCH_MESSAGING_SMS (default 10000), BENCH_MESSAGING_UPDATES (400),
BENCH_MESSAGING_E2E_RATE (100) and BENCH_MESSAGING_E2E_SECONDS (60).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import urllib.parse
from dataclasses import replace

import psycopg

from app.config import Settings
from app.jobs import Worker
from app.jobs.messaging import messaging_jobs
from app.localdb import free_port
from bench.bench_webhook import CONNECTIONS, drive, report, start_server
from bench.common import median, migrated_cluster, percentile
from tests.messaging.twilio_double import ACCOUNT_SID, AUTH_TOKEN, TwilioDouble
from tests.tickets.factories import make_world, ticket_at

MESSAGES = int(os.environ.get("BENCH_MESSAGING_SMS", 10_000))
UPDATES = int(os.environ.get("BENCH_MESSAGING_UPDATES", 400))
RATE = 200.0
WORKER_LANES = int(os.environ.get("BENCH_MESSAGING_LANES", 4))
CALLBACKS = 4000
E2E_RATE = int(os.environ.get("BENCH_MESSAGING_E2E_RATE", 100))
E2E_SECONDS = int(os.environ.get("BENCH_MESSAGING_E2E_SECONDS", 60))


def write_path(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        world = make_world(conn)
        conn.execute(
            "update public.profile set phone = '+15559990000', sms_opt_in = true,"
            " timezone = 'UTC' where id = %s",
            [world.patient],
        )
        tickets = [ticket_at(conn, world, "prescription", "sent") for _ in range(UPDATES)]
        timings: dict[bool, list[float]] = {True: [], False: []}
        batch = 25
        for start in range(0, len(tickets), batch):
            active = (start // batch) % 2 == 0
            conn.execute("update public.notification_rules set is_active = %s", [active])
            for ticket in tickets[start : start + batch]:
                began = time.perf_counter()
                conn.execute(
                    "update public.healthcare_tickets set status = 'received' where id = %s",
                    [ticket],
                )
                timings[active].append(time.perf_counter() - began)
        conn.execute("update public.notification_rules set is_active = true")
    on, off = median(timings[True]), median(timings[False])
    print(
        f"(a) status update p50: rules active {on * 1000:.2f} ms, rules disabled "
        f"{off * 1000:.2f} ms = {on / off:.2f}x (target <= 1.3x); p99 "
        f"{percentile(timings[True], 99) * 1000:.2f} / {percentile(timings[False], 99) * 1000:.2f}"
        f" ms; {len(timings[True])} + {len(timings[False])} updates",
        flush=True,
    )


def dispatch(url: str) -> None:
    double = TwilioDouble(latency=0.1).start()
    double.auto_callbacks = ("sent", "delivered")
    delivered: list[float] = []

    def count_callback(url_: str, params: dict[str, str], headers: dict[str, str]) -> int:
        delivered.append(time.monotonic())
        return 204

    double.callback_poster = count_callback
    settings = Settings(
        database_url=url,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_phone_number="+15550001111",
        twilio_api_base_url=double.base_url,
        twilio_max_sends_per_second=RATE,
        public_base_url="https://carehub.example",
    )
    with psycopg.connect(url, autocommit=True) as conn:
        # Only the bench's messages: what earlier phases queued is set aside.
        conn.execute(
            "update public.notification_deliveries set status = 'cancelled',"
            " suppressed_reason = 'bench' where status in ('queued', 'scheduled')"
        )
        conn.execute(
            "insert into public.notification_deliveries (rule_id, event, channel, address,"
            " dedupe_key, status, recipient_timezone)"
            " select r.id, r.event, 'sms', '+1555' || lpad(n::text, 7, '0'),"
            " 'bench:' || n, 'queued', 'UTC'"
            " from generate_series(1, %s) as n,"
            " (select id, event from public.notification_rules"
            "  where event = 'reservation_confirmed') as r",
            [MESSAGES],
        )
        conn.execute("update private.twilio_send_budget set tokens = 0")
        # Outside quiet hours whatever the hour of the run.
        conn.execute("update public.notification_rules set quiet_hours = true")
        hour = conn.execute("select extract(hour from now() at time zone 'UTC')").fetchone()
        assert hour is not None
        if not 8 <= hour[0] < 21:
            conn.execute(
                "update public.notification_deliveries set recipient_timezone ="
                " 'Pacific/Kiritimati' where dedupe_key like 'bench:%%'"
            )
    stop = threading.Event()
    jobs = [j for j in messaging_jobs(replace(settings)) if j.name == "twilio_send"]
    worker = Worker(url, jobs, stop, concurrency=WORKER_LANES)
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    started = time.monotonic()
    thread.start()
    deadline = started + MESSAGES / RATE * 3 + 30
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "select count(*) from public.notification_deliveries"
                " where dedupe_key like 'bench:%%' and status in ('queued', 'sending')"
            ).fetchone()
            if row == (0,):
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        worker.request_stop()
        thread.join(timeout=15)
        row = conn.execute(
            "select count(*) filter (where status = 'sent'), count(*)"
            " from public.notification_deliveries where dedupe_key like 'bench:%%'"
        ).fetchone()
    assert row is not None
    sent, total = row
    received = len(double.messages)
    unique = len({m["to"] for m in double.messages.values()})
    rate = received / elapsed
    print(
        f"(b) dispatch: {received} messages to the double (100 ms each) in {elapsed:.1f} s"
        f" = {rate:.0f}/s with TWILIO_MAX_SENDS_PER_SECOND={RATE:.0f} ({rate / RATE:.2f}x, "
        f"target >= 0.9x); {WORKER_LANES} lanes; duplicates {received - unique}; "
        f"lost {total - sent} of {total}; callbacks sent meanwhile {len(delivered)}",
        flush=True,
    )
    double.stop()


def callbacks(url: str) -> None:
    port = free_port()
    os.environ.update(
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_PHONE_NUMBER="+15550001111",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
    )
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(AUTH_TOKEN)
    server = start_server(url, port, "off")
    try:
        requests = []
        for n in range(CALLBACKS):
            delivery = f"00000000-0000-0000-0000-{n:012d}"
            path = f"/api/webhooks/twilio/status?delivery_id={delivery}"
            params = {"MessageSid": "SM" + secrets.token_hex(16), "MessageStatus": "delivered"}
            signature = validator.compute_signature(f"http://127.0.0.1:{port}{path}", params)
            body = urllib.parse.urlencode(params).encode()
            requests.append(
                (
                    "POST",
                    path,
                    body,
                    {
                        "Content-Type": "application/x-www-form-urlencoded",
                        "X-Twilio-Signature": signature,
                    },
                )
            )
        drive(port, [("GET", "/healthz", None, {})] * 300, CONNECTIONS, 30.0)
        ceiling = drive(port, [("GET", "/healthz", None, {})] * CALLBACKS, CONNECTIONS, 30.0)
        report("(c) ceiling: GET /healthz", ceiling)
        stored = drive(port, requests, CONNECTIONS, 30.0)
        report("(c) signed status callbacks, stored", stored)
        print(
            f"(c) callbacks stored {stored.rate:.0f}/s = {stored.rate / ceiling.rate:.2f}x the "
            "ceiling (target >= 0.5x)",
            flush=True,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def end_to_end(url: str) -> None:
    import subprocess
    import sys

    from bench.bench_webhook import drive_paced, signed_event

    count = E2E_RATE * E2E_SECONDS
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("delete from public.notification_deliveries")
        doctor = conn.execute(
            "insert into auth.users (id, aud, role, email, raw_app_meta_data, created_at,"
            " updated_at) values (gen_random_uuid(), 'authenticated', 'authenticated',"
            " 'bench-doctor@example.test', '{\"role\": \"doctor\"}', now(), now())"
            " returning id"
        ).fetchone()[0]
        practice = conn.execute(
            "insert into public.providers (kind, name) values ('doctor', 'Bench practice')"
            " returning id"
        ).fetchone()[0]
        pharmacy = conn.execute(
            "insert into public.providers (kind, name) values ('pharmacy', 'Bench pharmacy')"
            " returning id"
        ).fetchone()[0]
        conn.execute(
            "insert into public.provider_members (provider_id, profile_id, member_role)"
            " values (%s, %s, 'owner')",
            [practice, doctor],
        )
        with conn.transaction():
            # History, not news: no outbox rows while the tickets are set up.
            conn.execute("set local app.source = 'backfill'")
            conn.execute(
                "insert into auth.users (id, aud, role, email, raw_app_meta_data,"
                " raw_user_meta_data, created_at, updated_at)"
                " select gen_random_uuid(), 'authenticated', 'authenticated',"
                " 'bench-' || n || '@example.test', '{\"role\": \"patient\"}',"
                ' \'{"full_name": "Pat Bench"}\', now(), now()'
                " from generate_series(0, %s - 1) as n",
                [count],
            )
            conn.execute(
                "update public.profile set phone = '+1555' || lpad(substring(email from"
                " 'bench-([0-9]+)@'), 7, '0'), sms_opt_in = true, timezone = %s"
                " where email like 'bench-%%@example.test' and role = 'patient'",
                [_daytime_zone()],
            )
            conn.execute(
                "insert into public.prescriptions (doctor_id, pharmacy_id, patient_id,"
                " medications, external_order_id)"
                ' select %s, %s, p.id, \'[{"name": "Amoxicillin 500 mg"}]\','
                " 'BENCH-' || substring(p.email from 'bench-([0-9]+)@')"
                " from public.profile as p where p.email like 'bench-%%@example.test'"
                " and p.role = 'patient'",
                [doctor, pharmacy],
            )
            conn.execute(
                "insert into public.healthcare_tickets (ticket_type, status, patient_id,"
                " primary_provider_id, secondary_provider_id, required_provider_kind,"
                " prescription_id, created_by)"
                " select 'prescription', 'created', rx.patient_id, %s, %s, 'pharmacy', rx.id, %s"
                " from public.prescriptions as rx where rx.external_order_id like 'BENCH-%%'",
                [practice, pharmacy, doctor],
            )
            for status in ("sent", "received", "processing"):
                conn.execute(
                    "update public.healthcare_tickets set status = %s"
                    " where primary_provider_id = %s",
                    [status, practice],
                )
    double = TwilioDouble(latency=0.1).start()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": "+15550001111",
        "TWILIO_API_BASE_URL": double.base_url,
        "TWILIO_MAX_SENDS_PER_SECOND": "200",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith(("TWILIO", "PUBLIC"))})
    server = start_server(url, port, "off")
    worker = subprocess.Popen(
        [sys.executable, "-m", "app", "worker", "--concurrency", str(WORKER_LANES)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)
        pushes = [signed_event(n) for n in range(count)]
        started = time.time() + 0.05  # drive_paced's schedule: push i is due at start + i/rate
        run = drive_paced(port, pushes, E2E_RATE, 64)
        deadline = time.monotonic() + 60
        while double.count() < count and time.monotonic() < deadline:
            time.sleep(0.2)
        latencies = []
        for sid, message in list(double.messages.items()):
            n = int(message["to"][5:])
            latencies.append(double.received_at[sid] - (started + n / E2E_RATE))
        print(
            f"(d) Lifefile push -> SMS at the double: {len(latencies)} of {count} pushes "
            f"({E2E_RATE}/s for {E2E_SECONDS} s; pushes answered {dict(run.codes)}); p50 "
            f"{percentile(latencies, 50):.2f} s, p99 {percentile(latencies, 99):.2f} s "
            "(target p99 <= 2 s)",
            flush=True,
        )
    finally:
        worker.terminate()
        server.terminate()
        worker.wait(timeout=30)
        server.wait(timeout=30)
        double.stop()


def _daytime_zone() -> str:
    from tests.messaging.conftest import zone_where_it_is

    return zone_where_it_is(day=True)


def main() -> None:
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (shared)",
        flush=True,
    )
    with migrated_cluster() as bench:
        write_path(bench.url)
        dispatch(bench.url)
        callbacks(bench.url)
        end_to_end(bench.url)
