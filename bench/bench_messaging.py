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
(d) (not measured here: see the README's note) Lifefile push to SMS latency.

Sizes shrink with BENCH_MESSAGING_SMS (default 10000) and BENCH_MESSAGING_UPDATES (400).
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


def write_path(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        world = make_world(conn)
        conn.execute(
            "update public.profile set phone = '+15550009999', sms_opt_in = true,"
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
    unique = len({m["to"] for m in double.messages.values()})
    rate = double.count() / elapsed
    print(
        f"(b) dispatch: {double.count()} messages to the double (100 ms each) in {elapsed:.1f} s"
        f" = {rate:.0f}/s with TWILIO_MAX_SENDS_PER_SECOND={RATE:.0f} ({rate / RATE:.2f}x, "
        f"target >= 0.9x); {WORKER_LANES} lanes; duplicates {double.count() - unique}; "
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


def main() -> None:
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (shared)",
        flush=True,
    )
    with migrated_cluster() as bench:
        write_path(bench.url)
        dispatch(bench.url)
        callbacks(bench.url)
