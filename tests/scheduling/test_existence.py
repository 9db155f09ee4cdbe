"""Errors do not answer questions the caller may not ask (access issue, rule 9): the booking
RPCs give an id that does not exist and one the caller may not act on the same CH008 answer,
so they cannot be used to learn which requests, reservations and slots exist. The system keeps
the precise "does not exist" (P0002)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
import pytest

from tests.helpers import as_user, create_user
from tests.scheduling.factories import (
    create_practitioner,
    create_service,
    create_slot,
    request,
    sqlstate_of,
)


@dataclass
class Calendar:
    request: uuid.UUID  # pending
    reservation: uuid.UUID  # confirmed
    slot: uuid.UUID  # free, bookable


@pytest.fixture
def calendar(conn: psycopg.Connection) -> Calendar:
    doctor = create_practitioner(conn)
    service = create_service(conn, doctor)
    patient = create_user(conn, "patient")
    first, second = create_slot(conn, doctor, service), create_slot(conn, doctor, service)
    with as_user(conn, patient):
        pending = request(conn, first)["request_id"]
        held = request(conn, second)["request_id"]
    row = conn.execute("select (public.approve_reservation_request(%s)).id", [held]).fetchone()
    assert row is not None
    return Calendar(pending, row[0], create_slot(conn, doctor, service))


RPCS = {
    "approve_reservation_request": ("select public.approve_reservation_request(%s)", "request"),
    "reject_reservation_request": (
        "select public.reject_reservation_request(%s, 'No')",
        "request",
    ),
    "cancel_reservation": ("select public.cancel_reservation(%s, 'No')", "reservation"),
    "block_time_slot": ("select public.block_time_slot(%s)", "slot"),
    "unblock_time_slot": ("select public.unblock_time_slot(%s)", "slot"),
}


def refusal(
    conn: psycopg.Connection, user: uuid.UUID, query: str, id_: uuid.UUID
) -> tuple[str | None, str]:
    """(SQLSTATE, message with the id replaced by <id>) of ``query`` run as ``user``."""
    try:
        with as_user(conn, user):
            conn.execute(query, [id_])
    except psycopg.Error as exc:
        return exc.sqlstate, (exc.diag.message_primary or "").replace(str(id_), "<id>")
    return None, ""


@pytest.mark.parametrize("rpc", list(RPCS))
@pytest.mark.parametrize("stranger_role", ["doctor", "patient"])
def test_an_unknown_id_and_someone_elses_get_the_same_refusal(
    conn: psycopg.Connection, calendar: Calendar, rpc: str, stranger_role: str
) -> None:
    query, kind = RPCS[rpc]
    stranger = (
        create_practitioner(conn) if stranger_role == "doctor" else create_user(conn, "patient")
    )
    theirs = refusal(conn, stranger, query, getattr(calendar, kind))
    unknown = refusal(conn, stranger, query, uuid.uuid4())
    assert theirs[0] == "CH008"
    assert unknown == theirs


@pytest.mark.parametrize("rpc", list(RPCS))
def test_the_system_is_told_an_id_does_not_exist(conn: psycopg.Connection, rpc: str) -> None:
    query, _ = RPCS[rpc]
    assert sqlstate_of(lambda: conn.execute(query, [uuid.uuid4()])) == "P0002"
