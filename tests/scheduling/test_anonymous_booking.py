"""Anonymous booking cannot take a calendar hostage (access issue, rule 4): anonymous requests
wait for the practitioner, and pending anonymous holds are capped per phone and per client
address (private.limits). Each test is the attacker's move, through the API roles."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from tests.helpers import TestDatabase, as_anon, as_service, as_user, create_user, run_together
from tests.scheduling.factories import (
    assert_counters_true,
    create_practitioner,
    create_service,
    create_slot,
    request,
    slot_row,
)

PHONE = "+34600111222"


@contextmanager
def as_anon_from(conn: psycopg.Connection, headers: dict[str, str]) -> Iterator[psycopg.Connection]:
    """An anon request carrying HTTP headers, as PostgREST passes them (request.headers)."""
    with as_anon(conn):
        conn.execute(
            "select set_config('request.headers', %s, true)",
            [json.dumps({"accept": "application/json", **headers})],
        )
        yield conn


def refusal(call: Any) -> tuple[str | None, str]:
    try:
        call()
    except psycopg.Error as exc:
        return exc.sqlstate, exc.diag.message_primary or ""
    return None, ""


@pytest.fixture
def doctor(conn: psycopg.Connection) -> uuid.UUID:
    return create_practitioner(conn, approval_required=False)


@pytest.fixture
def service(conn: psycopg.Connection, doctor: uuid.UUID) -> uuid.UUID:
    return create_service(conn, doctor)


def test_anonymous_request_waits_for_the_practitioner_even_without_approval(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service)
    with as_anon(conn):
        result = request(conn, slot)
    assert (result["status"], result["reservation_id"]) == ("pending", None)
    assert conn.execute("select count(*) from public.reservation").fetchone() == (0,)
    assert slot_row(conn, slot)["pending_requests"] == 1
    # A signed-in patient of the same practitioner is still confirmed at once.
    other = create_slot(conn, doctor, service)
    with as_user(conn, create_user(conn, "patient")):
        assert request(conn, other)["status"] == "confirmed"


def test_one_phone_holds_one_place_per_slot(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service, capacity=5)
    with as_anon(conn):
        request(conn, slot, phone="+34 600 111 222")
    # The same number written differently is the same phone.
    with as_anon(conn):
        code, message = refusal(lambda: request(conn, slot, phone="+34600-111-222"))
    assert code == "CH009"
    assert "booking_phone_holds_per_slot" in message
    assert slot_row(conn, slot)["current_reservations"] == 1
    assert_counters_true(conn, slot)


def test_one_phone_holds_three_places_per_practitioner(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slots = [create_slot(conn, doctor, service) for _ in range(4)]
    requests = []
    for slot in slots[:3]:
        with as_anon(conn):
            requests.append(request(conn, slot)["request_id"])
    with as_anon(conn):
        code, message = refusal(lambda: request(conn, slots[3]))
    assert code == "CH009"
    assert "booking_phone_holds_per_practitioner" in message
    # Another practitioner's calendar is a separate count.
    other = create_practitioner(conn)
    other_slot = create_slot(conn, other, create_service(conn, other))
    with as_anon(conn):
        assert request(conn, other_slot)["status"] == "pending"
    # Once the practitioner answers one, the phone may ask again.
    with as_user(conn, doctor):
        conn.execute("select public.reject_reservation_request(%s, 'full')", [requests[0]])
    with as_anon(conn):
        assert request(conn, slots[3])["status"] == "pending"


def test_a_run_out_hold_no_longer_counts(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service, capacity=2)
    with as_anon(conn):
        held = request(conn, slot)["request_id"]
    conn.execute(
        "update public.reservation_request set expires_at = now() - interval '1 second'"
        " where id = %s",
        [held],
    )
    with as_anon(conn):
        assert request(conn, slot)["status"] == "pending"


def test_one_address_holds_ten_places_in_total(conn: psycopg.Connection) -> None:
    headers = {"x-forwarded-for": "203.0.113.7, 10.0.0.1"}
    slots = []
    for _ in range(4):
        practitioner = create_practitioner(conn)
        service = create_service(conn, practitioner)
        slots.extend(create_slot(conn, practitioner, service) for _ in range(3))
    for n, slot in enumerate(slots[:10]):
        with as_anon_from(conn, headers):
            request(conn, slot, phone=f"+3460030{n:04d}")
    with as_anon_from(conn, headers):
        code, message = refusal(lambda: request(conn, slots[10], phone="+34600309999"))
    assert code == "CH009"
    assert "booking_address_holds_total" in message
    assert "203.0.113.7" not in message  # the caller knows their address; logs need not
    # The address is the first of x-forwarded-for: the proxy's (10.0.0.1) is not the client.
    with as_anon_from(conn, {"x-forwarded-for": "198.51.100.1, 10.0.0.1"}):
        assert request(conn, slots[10], phone="+34600309998")["status"] == "pending"
    # x-real-ip, when the gateway sets it, wins over a forged x-forwarded-for.
    with as_anon_from(conn, {"x-real-ip": "203.0.113.7", "x-forwarded-for": "192.0.2.55"}):
        code, message = refusal(lambda: request(conn, slots[11], phone="+34600309997"))
    assert code == "CH009"


def test_caps_are_read_from_private_limits(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    conn.execute("update private.limits set value = 2 where name = 'booking_phone_holds_per_slot'")
    slot = create_slot(conn, doctor, service, capacity=3)
    for _ in range(2):
        with as_anon(conn):
            request(conn, slot)
    with as_anon(conn):
        code, _ = refusal(lambda: request(conn, slot))
    assert code == "CH009"


def test_signed_in_patients_and_the_service_are_not_capped(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    # The WhatsApp bot books as service_role for many people from one address and number.
    slot = create_slot(conn, doctor, service, capacity=4)
    for _ in range(2):
        with as_service(conn):
            conn.execute(
                "select set_config('request.headers', %s, true)",
                [json.dumps({"x-real-ip": "203.0.113.9"})],
            )
            request(conn, slot)
    patient = create_user(conn, "patient")
    with as_user(conn, patient):
        request(conn, slot)
    assert slot_row(conn, slot)["current_reservations"] == 3


def test_fifty_anonymous_requests_of_one_phone_at_once_get_one_place(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    doctor = create_practitioner(conn)
    slot = create_slot(conn, doctor, create_service(conn, doctor), capacity=50)
    connections = [database.connect() for _ in range(50)]

    def book(index: int) -> object:
        with as_anon_from(connections[index], {"x-real-ip": f"198.51.100.{index}"}):
            return request(connections[index], slot, phone=PHONE)

    results = run_together(len(connections), book)
    outcomes = Counter(r.sqlstate if isinstance(r, psycopg.Error) else "ok" for r in results)
    assert outcomes == {"ok": 1, "CH009": 49}
    assert slot_row(conn, slot)["current_reservations"] == 1
    assert_counters_true(conn, slot)


def test_anon_may_execute_no_private_function_but_the_booking_one(
    conn: psycopg.Connection,
) -> None:
    rows = conn.execute(
        "select p.oid::regprocedure::text from pg_proc p"
        " join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'private' and has_function_privilege('anon', p.oid, 'execute')"
    ).fetchall()
    assert rows == [("private.request_reservation(uuid,text,text,jsonb)",)]
