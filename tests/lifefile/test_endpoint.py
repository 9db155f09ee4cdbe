"""POST/GET /api/webhooks/lifefile/prescription-status through Flask's test client, on a real
database: what is stored (and what is not) for each response code."""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from collections.abc import Iterator

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.config import RateLimit, Settings
from app.db import EXTENSION_KEY as POOL_KEY
from app.webhooks.lifefile import MAX_BODY_BYTES
from tests.helpers import TestDatabase, run_together
from tests.lifefile.factories import (
    PATH,
    SECRET,
    create_prescription_ticket,
    data_push_element,
    encode,
    event,
    inbox,
    lifefile_app,
    post_event,
    signed_headers,
)


@pytest.fixture
def app(database: TestDatabase) -> Iterator[Flask]:
    with lifefile_app(database.url) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_seed_shape_event_is_stored_before_202(
    client: FlaskClient, conn: psycopg.Connection
) -> None:
    payload = event(
        "order_shipped",
        order_id="123",
        rx_number="RX123456",
        tracking={"trackingNumber": "1Z999", "carrier": "UPS"},
        somethingNew={"kept": True},
    )
    response = post_event(client, payload)
    assert response.status_code == 202
    assert response.json["status"] == "accepted"
    [row] = inbox(conn)
    assert response.json["events"] == [
        {"id": str(row["id"]), "status": "pending", "duplicate": False}
    ]
    assert row["status"] == "pending"
    assert row["shape"] == "event"
    assert (row["order_id"], row["rx_number"], row["external_status"]) == (
        "123",
        "RX123456",
        "order_shipped",
    )
    assert row["body"] == json.dumps(payload)  # the raw text, exactly
    assert row["payload"]["somethingNew"] == {"kept": True}  # unknown fields kept
    assert row["dedupe_key"].startswith("sha256:")


def test_data_push_array_is_one_event_per_element(
    client: FlaskClient, conn: psycopg.Connection
) -> None:
    elements = [
        data_push_element("Rx Scheduled", order_id="555", rx_number="RX1", fillId=1),
        data_push_element("Fulfillment", order_id="555", rx_number="RX1", fillId=1),
        data_push_element(
            "Rx Shipping Pickup", order_id="555", rx_number="RX1", trackingNumber="9400"
        ),
    ]
    response = post_event(client, elements)
    assert response.status_code == 202
    assert len(response.json["events"]) == 3
    rows = inbox(conn)
    assert [r["external_status"] for r in rows] == [
        "Rx Scheduled",
        "Fulfillment",
        "Rx Shipping Pickup",
    ]
    assert [json.loads(r["body"]) for r in rows] == elements
    assert {r["shape"] for r in rows} == {"data_push"}


def test_event_carrying_its_own_id_is_deduplicated_by_it(
    client: FlaskClient, conn: psycopg.Connection
) -> None:
    first = event("SHIPPED", order_id="1", eventId="evt-42")
    again = event("SHIPPED", order_id="1", eventId="evt-42", timestamp="2026-11-21T00:00:00Z")
    assert post_event(client, first).status_code == 202
    assert post_event(client, again).status_code == 200
    [row] = inbox(conn)
    assert row["dedupe_key"] == "id:evt-42"


def test_redelivery_is_200_duplicate_and_stores_nothing(
    client: FlaskClient, conn: psycopg.Connection
) -> None:
    payload = event("SHIPPED", order_id="1")
    first = post_event(client, payload)
    # Lifefile retries with the same event, re-serialised: same JSON, other key order.
    reordered = json.dumps(dict(reversed(list(payload.items())))).encode()
    second = post_event(client, reordered)
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json["status"] == "duplicate"
    assert second.json["events"][0]["id"] == first.json["events"][0]["id"]
    assert len(inbox(conn)) == 1


def test_same_order_and_status_with_another_changed_at_is_a_new_event(
    client: FlaskClient, conn: psycopg.Connection
) -> None:
    post_event(client, event("SHIPPED", order_id="1", changed_at="2026-11-20T10:00:00Z"))
    response = post_event(client, event("SHIPPED", order_id="1", changed_at="2026-11-20T11:00:00Z"))
    assert response.status_code == 202
    assert len(inbox(conn)) == 2


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},  # no signature
        {"Content-Type": "application/json", "x-lifefile-signature": "sha256=00ff"},
    ],
    ids=["missing", "wrong"],
)
def test_bad_or_missing_signature_is_401_and_stores_nothing(
    client: FlaskClient,
    conn: psycopg.Connection,
    headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.webhooks.lifefile"):
        response = client.post(PATH, data=encode(event("SHIPPED", order_id="1")), headers=headers)
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"
    assert inbox(conn) == []
    assert "refused a request" in caplog.text
    assert "refused by this process" in caplog.text


def test_tampered_body_is_401(client: FlaskClient, conn: psycopg.Connection) -> None:
    body = encode(event("SHIPPED", order_id="1"))
    headers = signed_headers(body)
    response = client.post(PATH, data=body.replace(b"SHIPPED", b"DELIVERED"), headers=headers)
    assert response.status_code == 401
    assert inbox(conn) == []


def test_stale_timestamp_is_401_and_only_the_log_says_why(
    client: FlaskClient, conn: psycopg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    body = encode(event("SHIPPED", order_id="1"))
    stale = str(int(time.time()) - 301)
    with caplog.at_level(logging.WARNING):
        response = client.post(PATH, data=body, headers=signed_headers(body, timestamp=stale))
    assert response.status_code == 401
    assert "old" not in response.json["detail"]
    assert "s old (limit 300 s)" in caplog.text
    fresh = str(int(time.time()))
    response = client.post(PATH, data=body, headers=signed_headers(body, timestamp=fresh))
    assert response.status_code == 202


def test_basic_auth_is_accepted_when_configured(database: TestDatabase) -> None:
    body = encode([data_push_element("Fulfillment", order_id="9")])
    good = "Basic " + base64.b64encode(b"lifefile:pw").decode()
    bad = "Basic " + base64.b64encode(b"lifefile:nope").decode()
    with lifefile_app(
        database.url, lifefile_webhook_secrets=(), lifefile_basic_auth=("lifefile", "pw")
    ) as app:
        client = app.test_client()
        headers = {"Content-Type": "application/json"}
        refused = client.post(PATH, data=body, headers={**headers, "Authorization": bad})
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == 'Basic realm="lifefile"'
        accepted = client.post(PATH, data=body, headers={**headers, "Authorization": good})
        assert accepted.status_code == 202


def test_stored_headers_leave_credentials_out(database: TestDatabase) -> None:
    body = encode(event("SHIPPED", order_id="1"))
    with lifefile_app(
        database.url, lifefile_basic_auth=("lifefile", "pw"), lifefile_webhook_secrets=(SECRET,)
    ) as app:
        response = app.test_client().post(
            PATH,
            data=body,
            headers={
                **signed_headers(body),
                "Authorization": "Basic " + base64.b64encode(b"lifefile:pw").decode(),
                "Cookie": "session=abc",
                "X-Api-Token": "t0ken",
            },
        )
    assert response.status_code == 202
    with psycopg.connect(database.url) as conn:
        [row] = inbox(conn)
    assert "authorization" not in row["headers"]
    assert "cookie" not in row["headers"]
    assert "x-api-token" not in row["headers"]
    assert row["headers"]["x-lifefile-signature"].startswith("sha256=")
    assert "pw" not in json.dumps(row["headers"])


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"prescription": {"orderId": "1"}, "status": ', "not valid JSON"),
        (b'{"hello": "world"}', "not a Lifefile event"),
        (b"[]", "empty array"),
        (b'[{"orderId": "1", "rxStatus": "Fulfillment"}, 42]', "element 2"),
        (b'{"prescription": {"orderId": "1"}, "status": {"current": "x\\u0000"}}', "valid JSON"),
        (b"\xff\xfe not utf-8", "not UTF-8"),
    ],
    ids=["malformed", "unknown-shape", "empty-array", "bad-element", "nul", "not-utf8"],
)
def test_signed_body_that_is_not_a_lifefile_event_is_400_and_stored_invalid(
    client: FlaskClient, conn: psycopg.Connection, body: bytes, detail: str
) -> None:
    response = client.post(PATH, data=body, headers=signed_headers(body))
    assert response.status_code == 400
    assert response.json["error"] == "invalid"
    assert detail in response.json["detail"]
    [row] = inbox(conn)
    assert row["status"] == "invalid"
    assert str(row["id"]) == response.json["event_id"]
    assert detail in row["last_error"]
    assert row["payload"] is None
    # A retry of the same bad body is not stored twice.
    assert client.post(PATH, data=body, headers=signed_headers(body)).status_code == 400
    assert len(inbox(conn)) == 1


def test_body_over_256_kib_is_413_and_stores_nothing(
    client: FlaskClient, conn: psycopg.Connection
) -> None:
    payload = event("SHIPPED", order_id="1", padding="x" * MAX_BODY_BYTES)
    response = post_event(client, payload)
    assert response.status_code == 413
    assert inbox(conn) == []
    # Exactly at the limit is fine.
    small = encode(event("SHIPPED", order_id="1", padding=""))
    exact = encode(event("SHIPPED", order_id="1", padding="x" * (MAX_BODY_BYTES - len(small))))
    assert len(exact) == MAX_BODY_BYTES
    assert post_event(client, exact).status_code == 202


def test_chunked_body_over_the_limit_is_413(client: FlaskClient, conn: psycopg.Connection) -> None:
    # No Content-Length: the size is found by reading, as gunicorn hands chunked bodies on.
    body = encode(event("SHIPPED", order_id="1", padding="x" * MAX_BODY_BYTES))
    response = client.post(
        PATH,
        input_stream=io.BytesIO(body),
        headers={**signed_headers(body), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert inbox(conn) == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_content_that_is_not_json_is_415(
    client: FlaskClient, conn: psycopg.Connection, content_type: str | None
) -> None:
    body = encode(event("SHIPPED", order_id="1"))
    headers = signed_headers(body)
    del headers["Content-Type"]
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post(PATH, data=body, headers=headers)
    assert response.status_code == 415
    assert inbox(conn) == []


def test_json_with_charset_is_accepted(client: FlaskClient) -> None:
    response = post_event(
        client,
        event("SHIPPED", order_id="1"),
        **{"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 202


def test_client_over_its_rate_gets_429_with_retry_after(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    with lifefile_app(database.url, lifefile_rate_limit=RateLimit(3, 60.0)) as app:
        client = app.test_client()
        codes = [
            post_event(client, event("SHIPPED", order_id=str(n))).status_code for n in range(5)
        ]
        refused = post_event(client, event("SHIPPED", order_id="9"))
    assert codes == [202, 202, 202, 429, 429]
    assert int(refused.headers["Retry-After"]) >= 1
    assert len(inbox(conn)) == 3


def test_without_secret_or_basic_auth_the_endpoint_is_503_not_configured(
    database: TestDatabase, conn: psycopg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="app.webhooks.lifefile"),
        lifefile_app(database.url, lifefile_webhook_secrets=()) as app,
    ):
        client = app.test_client()
        response = post_event(client, event("SHIPPED", order_id="1"))
        health = client.get(PATH)
        healthz = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["error"] == "not configured"
    assert "LIFEFILE_WEBHOOK_SECRET" in response.json["detail"]
    assert health.status_code == 503
    assert healthz.status_code == 200  # the service itself is fine
    assert "not configured" in healthz.json["features"]["lifefile_webhook"]
    assert "LIFEFILE_BASIC_AUTH" in healthz.json["features"]["lifefile_webhook"]
    assert "Lifefile webhook disabled" in caplog.text
    assert inbox(conn) == []


def test_service_starts_from_an_environment_without_lifefile_settings(
    database: TestDatabase,
) -> None:
    app = create_app(Settings.from_env({"DATABASE_URL": database.url}))
    try:
        response = app.test_client().get("/healthz")
    finally:
        app.extensions[POOL_KEY].close()
    assert response.status_code == 200
    assert response.json["features"]["lifefile_webhook"].startswith("disabled")


def test_get_is_a_health_check_without_secrets_or_data(
    client: FlaskClient, conn: psycopg.Connection
) -> None:
    post_event(client, event("SHIPPED", order_id="1"))
    response = client.get(PATH)
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "endpoint": "lifefile prescription-status",
        "authentication": ["hmac-sha256"],
        "database": "ok",
    }
    assert SECRET not in response.get_data(as_text=True)
    assert client.get("/healthz").json["features"]["lifefile_webhook"] == "enabled (hmac-sha256)"


def test_unreachable_database_is_503_with_retry_after(conn: psycopg.Connection) -> None:
    from app.localdb import free_port

    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    with lifefile_app(closed, pool_timeout=0.5) as app:
        client = app.test_client()
        response = post_event(client, event("SHIPPED", order_id="1"))
        health = client.get(PATH)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "nothing was stored" in response.json["detail"]
    assert health.status_code == 503


def test_fifty_parallel_deliveries_of_one_event_have_one_effect(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-50")
    payload = encode(event("order_processing", order_id="LF-50"))
    with lifefile_app(database.url, pool_max_size=50, pool_timeout=30.0) as app:
        codes = run_together(50, lambda _i: post_event(app.test_client(), payload).status_code)

    assert sorted(codes) == [200] * 49 + [202]
    [row] = inbox(conn)
    # And processing it (twice, as two workers might) has one effect.
    conn.execute("select private.process_lifefile_events(100)")
    conn.execute("select private.replay_lifefile_event(%s)", [row["id"]])
    history = conn.execute(
        "select status from public.prescription_status_events where ticket_id = %s",
        [ticket.ticket_id],
    ).fetchall()
    assert history == [("processing",)]
    notified = conn.execute(
        "select count(*) from public.notifications where ticket_id = %s and type = %s",
        [ticket.ticket_id, "prescription_processing"],
    ).fetchone()
    assert notified == (2,)  # the patient and the doctor, once each


def test_a_bare_id_naming_the_fill_does_not_swallow_later_statuses(
    client: FlaskClient, conn: psycopg.Connection
) -> None:
    first = post_event(client, [data_push_element("Fulfillment", order_id="7", id=555)])
    later = post_event(client, [data_push_element("Rx Shipping Pickup", order_id="7", id=555)])
    assert (first.status_code, later.status_code) == (202, 202)
    assert len(inbox(conn)) == 2
