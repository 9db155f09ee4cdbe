"""The Lifefile endpoint as a stranger attacks it (access issue, rule 13; mutation gaps of rule
14): malformed credentials, a body nested 100,000 levels deep, a timestamped signature replayed
as a body-only one, the clock in 401s, junk using up a genuine sender's budget, a forged
X-Forwarded-For, a limit per process, near-miss signatures."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.config import ConfigError, RateLimit, Settings
from app.jobs.webhooks import prune_rate_buckets
from app.webhooks.inbox import LocalBuckets, client_address
from app.webhooks.lifefile_auth import sign, verify_basic, verify_signature
from tests.helpers import TestDatabase, run_together
from tests.lifefile.factories import (
    PATH,
    SECRET,
    encode,
    event,
    inbox,
    lifefile_app,
    post_event,
    signed_headers,
)

BODY = encode(event("SHIPPED", order_id="LF-1"))


@pytest.fixture
def app(database: TestDatabase) -> Iterator[Flask]:
    with lifefile_app(database.url) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def refused(app: Flask) -> int:
    return app.extensions["carehub.lifefile"].unauthorized


@pytest.mark.parametrize(
    "headers",
    [
        {"x-lifefile-signature": "sha256=é" + "0" * 63},
        {"x-lifefile-signature": "ü" * 64},
        {
            "x-lifefile-signature": sign(SECRET, BODY, "1"),
            "x-lifefile-timestamp": "\u0661\u0667" + "\u0660" * 8,
        },
        {"x-lifefile-signature": sign(SECRET, BODY, "1"), "x-lifefile-timestamp": "\u00b2\u00b3"},
        {"x-lifefile-signature": sign(SECRET, BODY, "1"), "x-lifefile-timestamp": "9" * 5000},
    ],
    ids=[
        "non-ascii-signature",
        "latin1-signature",
        "arabic-digits",
        "superscripts",
        "5000-digits",
    ],
)
def test_malformed_credentials_are_401_counted_and_store_nothing(
    app: Flask, client: FlaskClient, conn: psycopg.Connection, headers: dict[str, str]
) -> None:
    encoded = {k: v.encode("utf-8").decode("latin-1") for k, v in headers.items()}
    response = client.post(PATH, data=BODY, headers={"Content-Type": "application/json", **encoded})
    assert response.status_code == 401, response.data
    assert response.json["error"] == "unauthorized"
    assert refused(app) == 1
    assert inbox(conn) == []


def test_non_ascii_basic_credentials_are_refused_not_an_error() -> None:
    assert not verify_basic(("user", "pass"), "Basic é").ok
    assert not verify_basic(("user", "pass"), "Basic " + "ü" * 10).ok


def test_signed_body_nested_100000_levels_is_400_and_stored_invalid(
    client: FlaskClient, conn: psycopg.Connection
) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = post_event(client, body)
    assert response.status_code == 400
    assert "nested" in response.json["detail"]
    [row] = inbox(conn)
    assert row["status"] == "invalid"
    assert "nested more than" in row["last_error"]
    # A redelivery (Lifefile retries) adds nothing.
    assert post_event(client, body).status_code == 400
    assert len(inbox(conn)) == 1


@pytest.mark.parametrize(
    "body",
    [b'"\\' * (128 * 1024), b'"' + b"a" * (256 * 1024 - 1), b'["' * (128 * 1024)],
    ids=["escaped-quotes", "unterminated-string", "open-strings"],
)
def test_hostile_bodies_are_judged_in_linear_time(
    client: FlaskClient, conn: psycopg.Connection, body: bytes
) -> None:
    started = time.monotonic()
    response = post_event(client, body)
    assert response.status_code == 400
    assert time.monotonic() - started < 5
    assert [row["status"] for row in inbox(conn)] == ["invalid"]


def test_timestamped_signature_replayed_as_a_body_only_one_is_refused(
    client: FlaskClient, conn: psycopg.Connection
) -> None:
    timestamp = str(int(time.time()))
    captured = signed_headers(BODY, timestamp=timestamp)
    assert client.post(PATH, data=BODY, headers=captured).status_code == 202
    replayed_body = timestamp.encode() + b"." + BODY
    replay = {
        "Content-Type": "application/json",
        "x-lifefile-signature": captured["x-lifefile-signature"],
    }
    assert client.post(PATH, data=replayed_body, headers=replay).status_code == 401
    assert len(inbox(conn)) == 1


def test_body_only_signature_never_passes_as_a_timestamped_one() -> None:
    # Whatever timestamp is claimed, <ts>.<body'> would have to equal a JSON body.
    body_signature = sign(SECRET, BODY)
    for timestamp in ("", "{", BODY[:1].decode()):
        assert not verify_signature([SECRET], BODY[1:], body_signature, timestamp).ok


def test_401_bodies_do_not_reveal_the_servers_clock(client: FlaskClient) -> None:
    details = set()
    for offset in (-100_000, -400, 400, 100_000):
        timestamp = str(int(time.time()) + offset)
        response = client.post(PATH, data=BODY, headers=signed_headers(BODY, timestamp=timestamp))
        assert response.status_code == 401
        text = response.get_data(as_text=True)
        assert str(abs(offset)) not in text
        assert not any(ch.isdigit() for ch in json.loads(text)["detail"])
        details.add(text)
    wrong = client.post(PATH, data=BODY, headers=signed_headers(BODY, secret="wrong"))
    details.add(wrong.get_data(as_text=True))
    assert len(details) == 1  # a stale timestamp reads like any other refusal


def test_junk_requests_never_use_up_a_genuine_senders_budget(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    with lifefile_app(
        database.url,
        lifefile_rate_limit=RateLimit(3, 60.0),
        lifefile_unauthenticated_rate_limit=RateLimit(5, 60.0),
    ) as app:
        client = app.test_client()
        junk = [
            client.post(PATH, data=BODY, headers=signed_headers(BODY, secret="x")).status_code
            for _ in range(30)
        ]
        genuine = [
            post_event(client, event("SHIPPED", order_id=f"LF-{n}")).status_code for n in range(4)
        ]
    assert junk == [401] * 5 + [429] * 25
    assert genuine == [202, 202, 202, 429]
    assert len(inbox(conn)) == 3


def test_the_rate_limit_holds_across_server_processes(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    # Two apps stand for two gunicorn workers: each its own pool, one shared limit.
    with (
        lifefile_app(database.url, lifefile_rate_limit=RateLimit(4, 60.0)) as first,
        lifefile_app(database.url, lifefile_rate_limit=RateLimit(4, 60.0)) as second,
    ):
        clients = [first.test_client(), second.test_client()]
        codes = [
            post_event(clients[n % 2], event("SHIPPED", order_id=f"LF-{n}")).status_code
            for n in range(8)
        ]
    assert codes == [202] * 4 + [429] * 4
    assert len(inbox(conn)) == 4


def test_forged_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    def post_as(app: Flask, forwarded: str, order: str) -> int:
        return (
            app.test_client()
            .post(
                PATH,
                data=encode(event("SHIPPED", order_id=order)),
                headers={
                    **signed_headers(encode(event("SHIPPED", order_id=order))),
                    "X-Forwarded-For": forwarded,
                },
                environ_base={"REMOTE_ADDR": "10.0.0.5"},
            )
            .status_code
        )

    limit = RateLimit(1, 60.0)
    with lifefile_app(database.url, lifefile_rate_limit=limit) as untrusting:
        # An attacker rotating X-Forwarded-For does not get a fresh budget per forged address.
        assert [post_as(untrusting, f"198.51.100.{n}", f"A{n}") for n in range(3)] == [
            202,
            429,
            429,
        ]
    networks = (ipaddress.ip_network("10.0.0.0/8"),)
    with lifefile_app(database.url, lifefile_rate_limit=limit, trusted_proxies=networks) as app:
        # Behind our proxy, each real client has its own budget.
        assert post_as(app, "203.0.113.1", "B1") == 202
        assert post_as(app, "203.0.113.2", "B2") == 202
        assert post_as(app, "203.0.113.2", "B3") == 429
    addresses = {row["client_addr"] for row in inbox(conn)}
    assert addresses == {"10.0.0.5", "203.0.113.1", "203.0.113.2"}


def test_client_address_takes_the_nearest_untrusted_hop() -> None:
    trusted = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32"))
    assert client_address("127.0.0.1", "1.1.1.1, 2.2.2.2, 10.1.1.1", trusted) == "2.2.2.2"
    assert client_address("8.8.8.8", "1.1.1.1", trusted) == "8.8.8.8"
    assert client_address("127.0.0.1", "not-an-address", trusted) == "127.0.0.1"
    assert client_address("127.0.0.1", None, trusted) == "127.0.0.1"


def test_trusted_proxies_setting_takes_addresses_and_cidrs() -> None:
    env = {"DATABASE_URL": "postgresql://x", "TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1,::1"}
    assert [str(n) for n in Settings.from_env(env).trusted_proxies] == [
        "10.0.0.0/8",
        "127.0.0.1/32",
        "::1/128",
    ]
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        Settings.from_env({**env, "TRUSTED_PROXIES": "10.0.0.0/33"})


# -- near misses (rule 14): a comparison on a prefix of the digest must fail these ----------


def near_misses(signature: str) -> list[str]:
    last = "0" if signature[-1] != "0" else "1"
    return [signature[:-1] + last, signature[:-1], signature[:8], signature[:32]]


@pytest.mark.parametrize("timestamp", [None, "1800000000"])
def test_near_miss_signatures_are_refused(timestamp: str | None) -> None:
    good = sign(SECRET, BODY, timestamp)
    now = 1_800_000_000.0
    assert verify_signature([SECRET], BODY, good, timestamp, now=now).ok
    for near in near_misses(good):
        assert not verify_signature([SECRET], BODY, near, timestamp, now=now).ok, near


def test_near_miss_signatures_are_401_through_the_endpoint(
    client: FlaskClient, conn: psycopg.Connection
) -> None:
    good = sign(SECRET, BODY)
    for near in near_misses(good):
        headers = {"Content-Type": "application/json", "x-lifefile-signature": near}
        assert client.post(PATH, data=BODY, headers=headers).status_code == 401
    assert inbox(conn) == []


def test_idle_rate_buckets_are_forgotten_by_the_worker(conn: psycopg.Connection) -> None:
    conn.execute("select private.take_webhook_token('lifefile:signed:a', 3, 1)")
    conn.execute("select private.take_webhook_token('lifefile:signed:b', 3, 1)")
    conn.execute(
        "update private.webhook_rate_buckets set refilled_at = now() - interval '2 hours'"
        " where bucket = 'lifefile:signed:a'"
    )
    assert prune_rate_buckets(conn) == 1
    assert conn.execute("select bucket from private.webhook_rate_buckets").fetchall() == [
        ("lifefile:signed:b",)
    ]


def test_token_bucket_refills_at_its_rate_and_a_refusal_takes_nothing(
    conn: psycopg.Connection,
) -> None:
    def take() -> tuple[bool, float]:
        row = conn.execute("select * from private.take_webhook_token('b', 3, 0.5)").fetchone()
        assert row is not None
        return row[0], row[1]

    assert [take()[0] for _ in range(3)] == [True, True, True]
    allowed, retry_after = take()
    assert not allowed
    assert 1.9 < retry_after <= 2.0
    conn.execute(
        "update private.webhook_rate_buckets set refilled_at = refilled_at - interval '2 s'"
    )
    assert take()[0]
    assert not take()[0]


def test_concurrent_requests_of_many_processes_share_one_bucket_exactly(
    database: TestDatabase,
) -> None:
    connections = [database.connect() for _ in range(20)]

    def take(index: int) -> bool:
        row = (
            connections[index]
            .execute("select allowed from private.take_webhook_token('shared', 10, 0.001)")
            .fetchone()
        )
        assert row is not None
        return bool(row[0])

    results = run_together(20, take)
    assert results.count(True) == 10
    assert results.count(False) == 10


def test_refused_requests_budget_is_a_setting_of_its_own() -> None:
    env = {"DATABASE_URL": "postgresql://x"}
    assert Settings.from_env(env).lifefile_unauthenticated_rate_limit == RateLimit(60, 60.0)
    tuned = {**env, "LIFEFILE_UNAUTHENTICATED_RATE_LIMIT": "5/second"}
    assert Settings.from_env(tuned).lifefile_unauthenticated_rate_limit == RateLimit(5, 1.0)
    off = {**env, "LIFEFILE_UNAUTHENTICATED_RATE_LIMIT": "off"}
    assert Settings.from_env(off).lifefile_unauthenticated_rate_limit is None
    with pytest.raises(ConfigError, match="LIFEFILE_UNAUTHENTICATED_RATE_LIMIT"):
        Settings.from_env({**env, "LIFEFILE_UNAUTHENTICATED_RATE_LIMIT": "lots"})


def test_a_junk_flood_past_its_budget_is_refused_without_asking_the_database(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    with lifefile_app(database.url, lifefile_unauthenticated_rate_limit=RateLimit(2, 60.0)) as app:
        client = app.test_client()
        codes = [
            client.post(PATH, data=BODY, headers=signed_headers(BODY, secret="x")).status_code
            for _ in range(3)
        ]
        app.extensions["carehub.pool"].close()  # the database is now out of reach
        flood = client.post(PATH, data=BODY, headers=signed_headers(BODY, secret="x"))
    assert codes == [401, 401, 429]
    assert flood.status_code == 429


def test_local_buckets_allow_a_burst_then_refill_per_client() -> None:
    buckets = LocalBuckets(RateLimit(3, 1.0))
    assert [buckets.allow("a", now=100.0).allowed for _ in range(4)] == [True, True, True, False]
    assert 0 < buckets.allow("a", now=100.0).retry_after <= 1.0
    assert buckets.allow("b", now=100.0).allowed  # another client has its own bucket
    assert buckets.allow("a", now=100.5).allowed  # tokens come back at 3 a second
    small = LocalBuckets(RateLimit(1, 60.0), max_clients=2)
    for client in ("a", "b", "c"):
        small.allow(client, now=0.0)
    assert len(small._buckets) == 2
