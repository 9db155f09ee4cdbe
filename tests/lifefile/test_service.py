"""The Lifefile webhook as it runs: the worker woken by NOTIFY, the operator commands, the real
gunicorn server end to end, and a database that goes away and comes back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from app.cli import main as carehub
from app.jobs import Worker, default_jobs
from app.jobs import lifefile as lifefile_job
from app.jobs.webhooks import inbox_job
from app.localdb import LocalCluster, free_port
from app.migrate import Migrator
from app.webhooks.lifefile import INBOX
from tests.helpers import MIGRATIONS, TestDatabase
from tests.lifefile.factories import (
    PATH,
    SECRET,
    create_prescription_ticket,
    encode,
    event,
    inbox,
    lifefile_app,
    post_event,
    signed_headers,
    ticket_status,
)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_worker_runs_the_lifefile_job_on_its_channel() -> None:
    [job] = [j for j in default_jobs() if j.name == "lifefile_webhooks"]
    assert job.channels == ("lifefile_webhook_events",)
    assert job.every == lifefile_job.SWEEP_SECONDS
    assert job.queue  # on the worker's --concurrency lanes


def test_worker_processes_a_stored_event_when_notified(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-W")
    # A sweep period far beyond the test's patience: only the NOTIFY can make it run again.
    job = inbox_job(INBOX, every=3600, batch_size=100)
    stop = threading.Event()
    worker = Worker(database.url, [job], stop=stop)
    thread = threading.Thread(target=worker.run_forever)
    thread.start()
    try:
        time.sleep(0.5)  # its first (empty) run is over; it now sleeps on the channel
        with lifefile_app(database.url) as app:
            response = post_event(app.test_client(), event("SHIPPED", order_id="LF-W"))
            assert response.status_code == 202
            wait_for(lambda: ticket_status(conn, ticket.ticket_id) == "shipped", what="the worker")
    finally:
        stop.set()
        thread.join()
    assert [r["status"] for r in inbox(conn)] == ["processed"]


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(carehub, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_operator_lists_shows_and_replays_events(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    ticket = create_prescription_ticket(conn)
    with lifefile_app(database.url) as app:
        client = app.test_client()
        accepted = post_event(client, event("RECEIVED", order_id="LF-OP"))
        invalid_body = b'{"not": "lifefile"}'
        client.post(PATH, data=invalid_body, headers=signed_headers(invalid_body))
    event_id = accepted.json["events"][0]["id"]
    conn.execute("select private.process_lifefile_events(100)")
    url = ["webhooks", "--database-url", database.url]

    code, output = _cli(*url, "list")
    assert code == 0
    assert event_id in output
    assert "unmatched" in output
    assert "invalid" in output
    code, output = _cli(*url, "list", "--status", "unmatched")
    assert event_id in output
    assert "invalid" not in output

    code, output = _cli(*url, "show", event_id)
    assert code == 0
    assert "LF-OP" in output
    assert "x-lifefile-signature" in output
    assert '"current": "RECEIVED"' in output
    assert "no sent prescription has Lifefile order LF-OP" in output

    conn.execute(
        "update public.prescriptions set external_order_id = 'LF-OP' where id = %s",
        [ticket.prescription_id],
    )
    code, output = _cli(*url, "replay", event_id)
    assert code == 0
    assert f"{event_id}: processed" in output
    assert ticket_status(conn, ticket.ticket_id) == "received"
    code, output = _cli(*url, "show", event_id)
    assert "history: sent -> received" in output


def test_operator_replays_by_status_and_is_told_what_cannot_be_replayed(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    conn.execute(
        "select private.receive_lifefile_delivery(%s, '{}', 'x')",
        [json.dumps(event("On The Moon", order_id="LF-1"))],
    )
    conn.execute("select private.process_lifefile_events(100)")
    url = ["webhooks", "--database-url", database.url]
    code, output = _cli(*url, "replay", "--status", "unmapped")
    assert code == 0
    assert ": unmapped" in output  # still no mapping
    assert "carehub webhooks show" in output
    code, output = _cli(*url, "replay", "--status", "failed")
    assert "no failed events" in output
    [invalid] = conn.execute(
        "select event_id from private.receive_lifefile_delivery('nope', '{}', 'x', null, 'bad')"
    ).fetchall()
    result = CliRunner().invoke(carehub, [*url, "replay", str(invalid[0])])
    assert result.exit_code == 1
    assert "cannot be replayed" in result.output
    result = CliRunner().invoke(carehub, [*url, "replay"])
    assert result.exit_code == 2
    assert "give an event id or --status" in result.output
    result = CliRunner().invoke(carehub, [*url, "show", "not-a-uuid"])
    assert result.exit_code == 2


# -- the real server ---------------------------------------------------------------------------


@pytest.fixture
def served(database: TestDatabase) -> Iterator[str]:
    """`carehub serve` (gunicorn, two worker processes) and `carehub worker` on the test's
    database; yields the service's base URL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database.url,
        "LIFEFILE_WEBHOOK_SECRET": f"retired-secret,{SECRET}",
        "PORT": str(port),
        "WORKER_POLL_SECONDS": "60",
    }
    env.pop("LIFEFILE_BASIC_AUTH", None)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [sys.executable, "-m", "app", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(base + "/healthz")[0] == 200, what="the service to start")
        yield base
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_end_to_end_through_gunicorn_and_the_worker(served: str, conn: psycopg.Connection) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-E2E", rx_number="RX-E2E")
    assert _get(served + PATH) == (
        200,
        {
            "status": "ok",
            "endpoint": "lifefile prescription-status",
            "authentication": ["hmac-sha256"],
            "database": "ok",
        },
    )
    # The operator's test event, signed with a timestamp, over real HTTP.
    code, output = _cli(
        "webhooks",
        "send-test",
        "--status",
        "shipped",
        "--order",
        "LF-E2E",
        "--tracking-number",
        "1Z999AA10123456784",
        "--url",
        served + PATH,
        env={"LIFEFILE_WEBHOOK_SECRET": SECRET},
    )
    assert code == 0, output
    assert "-> 202" in output
    wait_for(lambda: ticket_status(conn, ticket.ticket_id) == "shipped", what="processing")
    tracking = conn.execute(
        "select tracking_number, tracking_url from public.prescription_tracking"
        " where ticket_id = %s",
        [ticket.ticket_id],
    ).fetchone()
    assert tracking == (
        "1Z999AA10123456784",
        "https://www.ups.com/track?tracknum=1Z999AA10123456784",
    )
    # A redelivery, a bad signature and a Data Push array, through the same server.
    body = encode([{"orderId": "LF-E2E", "rxNumber": "RX-E2E", "rxStatus": "Fulfillment"}])
    assert _post(served + PATH, body, signed_headers(body, secret="retired-secret")) == 202
    assert _post(served + PATH, body, signed_headers(body)) == 200
    assert _post(served + PATH, body, signed_headers(body, secret="guess")) == 401
    wait_for(lambda: all(r["status"] == "processed" for r in inbox(conn)), what="the second event")
    assert ticket_status(conn, ticket.ticket_id) == "shipped"  # Fulfillment is older news
    assert len(inbox(conn)) == 2


def test_send_test_without_a_secret_says_what_to_set() -> None:
    result = CliRunner().invoke(
        carehub,
        ["webhooks", "send-test", "--status", "shipped", "--order", "X"],
        env={"LIFEFILE_WEBHOOK_SECRET": "", "LIFEFILE_BASIC_AUTH": ""},
    )
    assert result.exit_code == 1
    assert "LIFEFILE_WEBHOOK_SECRET" in result.output


# -- the database goes away ------------------------------------------------------------------


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A PostgreSQL server of this test's own, with production's durability, to stop and start."""
    root = Path(tempfile.mkdtemp(prefix="carehub-lifefile-"))
    root.chmod(0o755)
    cluster = LocalCluster(root / "pg", free_port(), auth="trust")
    cluster.start()
    try:
        with psycopg.connect(cluster.url(), autocommit=True) as admin:
            admin.execute("create database carehub")
        Migrator(cluster.url("carehub"), MIGRATIONS, say=lambda _line: None).run()
        yield cluster
    finally:
        cluster.destroy()


def test_database_down_is_503_and_nothing_is_lost_when_it_returns(
    own_cluster: LocalCluster,
) -> None:
    url = own_cluster.url("carehub")
    before = event("RECEIVED", order_id="LF-1", changed_at="2026-11-20T10:00:00Z")
    during = event("SHIPPED", order_id="LF-1", changed_at="2026-11-20T12:00:00Z")
    with lifefile_app(url, pool_timeout=1.0) as app:
        client = app.test_client()
        assert post_event(client, before).status_code == 202

        own_cluster.stop(mode="immediate")  # a crash, not a polite shutdown
        refused = post_event(client, during)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"]
        assert client.get(PATH).status_code == 503
        assert client.get("/healthz").status_code == 503

        own_cluster.start()
        # Lifefile retries what we refused, and (not knowing) what we had accepted.
        wait_for(lambda: post_event(client, during).status_code == 202, what="recovery")
        assert post_event(client, before).status_code == 200
    with psycopg.connect(url) as conn:
        rows = inbox(conn)
    assert [r["external_status"] for r in rows] == ["RECEIVED", "SHIPPED"]
    assert {r["status"] for r in rows} == {"pending"}
