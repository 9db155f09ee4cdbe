"""Factories and probes for scheduling tests (rows written as the system, i.e. the superuser)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row

from tests.helpers import create_user

T = TypeVar("T")


def create_practitioner(
    conn: psycopg.Connection,
    *,
    tz: str = "Europe/Madrid",
    approval_required: bool = True,
    role: str = "doctor",
) -> uuid.UUID:
    practitioner = create_user(conn, role, full_name=f"Dr {uuid.uuid4().hex[:6]}")
    conn.execute(
        "update public.profile set timezone = %s, appointment_approval_required = %s where id = %s",
        [tz, approval_required, practitioner],
    )
    return practitioner


def create_service(
    conn: psycopg.Connection,
    practitioner: uuid.UUID,
    *,
    name: str = "General consultation",
    duration: int = 30,
    price: str = "50.00",
    is_active: bool = True,
) -> uuid.UUID:
    row = conn.execute(
        "insert into public.medical_service (profile_id, name, duration, price, is_active)"
        " values (%s, %s, %s, %s, %s) returning id",
        [practitioner, name, duration, price, is_active],
    ).fetchone()
    assert row is not None
    return row[0]


def create_rule(
    conn: psycopg.Connection,
    practitioner: uuid.UUID,
    day_of_week: int,
    *,
    start: str = "09:00",
    end: str = "17:00",
    slot_duration: int = 30,
    buffer_time: int = 0,
    capacity: int = 1,
    effective_from: str = "2026-01-01",
    effective_to: str | None = None,
    service: uuid.UUID | None = None,
    is_active: bool = True,
) -> uuid.UUID:
    row = conn.execute(
        "insert into public.availability_rule (profile_id, service_id, day_of_week, start_time,"
        " end_time, slot_duration, buffer_time, max_appointments_per_slot, effective_from,"
        " effective_to, is_active) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " returning id",
        [
            practitioner,
            service,
            day_of_week,
            start,
            end,
            slot_duration,
            buffer_time,
            capacity,
            effective_from,
            effective_to,
            is_active,
        ],
    ).fetchone()
    assert row is not None
    return row[0]


# Slots are placed far apart by default so that slots of one practitioner never overlap.
_next_offset = [0]


def create_slot(
    conn: psycopg.Connection,
    practitioner: uuid.UUID,
    service: uuid.UUID,
    *,
    capacity: int = 1,
    start: datetime | None = None,
    minutes: int = 30,
) -> uuid.UUID:
    if start is None:
        _next_offset[0] += 1
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1, hours=_next_offset[0])
    row = conn.execute(
        "insert into public.time_slot (profile_id, service_id, start_time, end_time,"
        " max_reservations) values (%s, %s, %s, %s, %s) returning id",
        [practitioner, service, start, start + timedelta(minutes=minutes), capacity],
    ).fetchone()
    assert row is not None
    return row[0]


def make_slot_started(conn: psycopg.Connection, slot: uuid.UUID) -> None:
    """Move a slot (as the system) to have started a minute ago."""
    conn.execute(
        "update public.time_slot set start_time = now() - interval '1 minute',"
        " end_time = now() + interval '29 minutes' where id = %s",
        [slot],
    )


def request(
    conn: psycopg.Connection,
    slot: uuid.UUID,
    *,
    name: str = "Maria Garcia",
    phone: str = "+34600111222",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """request_reservation on ``conn`` as whoever the connection currently is."""
    row = conn.execute(
        "select public.request_reservation(%s, %s, %s, %s::jsonb)",
        [slot, name, phone, json.dumps(details or {})],
    ).fetchone()
    assert row is not None
    return row[0]


def slot_row(conn: psycopg.Connection, slot: uuid.UUID) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "select status, current_reservations, pending_requests, max_reservations,"
            " expires_at from public.time_slot where id = %s",
            [slot],
        ).fetchone()
    assert row is not None
    return row


def true_places(conn: psycopg.Connection, slot: uuid.UUID) -> tuple[int, int]:
    """(places taken, holds) counted from the requests and reservations themselves."""
    row = conn.execute(
        "select (select count(*) from public.reservation where slot_id = %(s)s"
        "          and status <> 'cancelled')"
        "     + (select count(*) from public.reservation_request where slot_id = %(s)s"
        "          and status = 'pending'),"
        "       (select count(*) from public.reservation_request where slot_id = %(s)s"
        "          and status = 'pending')",
        {"s": slot},
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def assert_counters_true(conn: psycopg.Connection, slot: uuid.UUID) -> None:
    state = slot_row(conn, slot)
    assert (state["current_reservations"], state["pending_requests"]) == true_places(conn, slot)


def sqlstate_of(call: Callable[[], T]) -> str | None:
    """Run ``call``; return the SQLSTATE it raised (None when it succeeded)."""
    try:
        call()
    except psycopg.Error as exc:
        return exc.sqlstate
    return None
