"""Fixtures of the messaging tests: a real database (tests/conftest.py), the local Twilio double
driven through the real twilio client, the service for callbacks, and helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.config import Settings
from app.db import EXTENSION_KEY as POOL_KEY
from app.jobs.messaging import Sender
from app.twilio_client import make_client
from tests.helpers import TestDatabase
from tests.messaging.twilio_double import ACCOUNT_SID, AUTH_TOKEN, TwilioDouble

PUBLIC_BASE_URL = "https://carehub.example"
FROM_NUMBER = "+15550001111"
ZONES = (
    "UTC",
    "Europe/Madrid",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Pacific/Honolulu",
)


def zone_where_it_is(day: bool) -> str:
    """A time zone where it is now between 09:00 and 20:00 (day) or 22:00 and 06:00 (night)."""
    now = datetime.now(UTC)
    for name in ZONES:
        hour = now.astimezone(ZoneInfo(name)).hour
        if (9 <= hour < 20) if day else (hour >= 22 or hour < 6):
            return name
    raise AssertionError("no zone fits")


@pytest.fixture
def double() -> Iterator[TwilioDouble]:
    server = TwilioDouble().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(database: TestDatabase, double: TwilioDouble) -> Settings:
    return Settings(
        database_url=database.url,
        lifefile_unauthenticated_rate_limit=None,
        pool_timeout=2.0,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_phone_number=FROM_NUMBER,
        twilio_whatsapp_from="whatsapp:" + FROM_NUMBER,
        twilio_api_base_url=double.base_url,
        twilio_max_sends_per_second=1000.0,
        public_base_url=PUBLIC_BASE_URL,
        support_phone="+18005550199",
        app_base_url="https://app.carehub.example",
    )


@pytest.fixture
def sender(settings: Settings) -> Sender:
    client = make_client(settings)
    assert client is not None
    return Sender(settings, client)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    service = create_app(settings)
    service.config["TESTING"] = True
    try:
        yield service
    finally:
        service.extensions[POOL_KEY].close()


@pytest.fixture
def client(app: Flask, double: TwilioDouble) -> FlaskClient:
    test_client = app.test_client()

    def post(url: str, params: dict[str, str], headers: dict[str, str]) -> Any:
        assert url.startswith(PUBLIC_BASE_URL), url
        return test_client.post(url[len(PUBLIC_BASE_URL) :], data=params, headers=headers)

    double.callback_poster = post
    return test_client


def consenting_patient(
    conn: psycopg.Connection,
    patient: uuid.UUID,
    phone: str,
    *,
    tz: str | None = None,
    preferred: str = "sms",
) -> None:
    conn.execute(
        "update public.profile set phone = %s, sms_opt_in = true, timezone = %s,"
        " preferred_contact_method = %s, full_name = 'Alex Example' where id = %s",
        [phone, tz or zone_where_it_is(day=True), preferred, patient],
    )


def deliveries(conn: psycopg.Connection, **where: Any) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    clauses = " and ".join(f"{k} = %({k})s" for k in where) or "true"
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"select * from public.notification_deliveries where {clauses} order by created_at, id",
            where,
        ).fetchall()


def run_sender(sender: Sender, conn: psycopg.Connection, rounds: int = 5) -> int:
    total = 0
    for _ in range(rounds):
        handled = sender.run(conn)
        total += handled
        if not handled:
            break
    return total


def process_inbox(conn: psycopg.Connection) -> int:
    row = conn.execute("select private.process_twilio_events(100)").fetchone()
    return int(row[0]) if row else 0


def without_twilio(settings: Settings) -> Settings:
    return replace(settings, twilio_account_sid="", twilio_auth_token="")
