"""Scheduling RLS: every table and RPC against the role matrix (practitioner, patient, another
patient, another practitioner, admin, anon) with its three outcomes: allowed (rows), silently
filtered (0 rows) and rejected (the error's SQLSTATE). Every probe is rolled back."""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass

import psycopg
import pytest

from tests.helpers import as_anon, as_user, create_user
from tests.scheduling.factories import (
    create_practitioner,
    create_rule,
    create_service,
    create_slot,
    request,
)

ACTORS = ("practitioner", "patient", "other_patient", "other_practitioner", "admin", "anon")


@dataclass
class World:
    ids: dict[str, uuid.UUID | None]  # actor -> user id (anon: None)
    service: uuid.UUID
    open_slot: uuid.UUID
    pending_request: uuid.UUID
    reservation: uuid.UUID


@pytest.fixture
def world(conn: psycopg.Connection) -> World:
    doctor = create_practitioner(conn, tz="UTC")
    other_doctor = create_practitioner(conn, tz="UTC")
    patient, other_patient = create_user(conn, "patient"), create_user(conn, "patient")
    admin = create_user(conn, "admin")
    service = create_service(conn, doctor)
    create_service(conn, doctor, name="Withdrawn", is_active=False)
    create_rule(conn, doctor, 1)
    open_slot = create_slot(conn, doctor, service, capacity=2)
    booked_slot, held_slot = create_slot(conn, doctor, service), create_slot(conn, doctor, service)
    with as_user(conn, patient):
        approved = request(conn, booked_slot)["request_id"]
        pending = request(conn, held_slot)["request_id"]
    row = conn.execute(
        "select id from public.approve_reservation_request(%s)", [approved]
    ).fetchone()
    assert row is not None
    conn.execute(
        "insert into public.appointment_note (reservation_id, profile_id, note_type, content,"
        " is_private) values (%(r)s, %(d)s, 'follow_up', 'Shared', false),"
        " (%(r)s, %(d)s, 'diagnosis', 'Private', true)",
        {"r": row[0], "d": doctor},
    )
    # The other practitioner has a booked slot of their own, with the other patient.
    other_slot = create_slot(conn, other_doctor, create_service(conn, other_doctor))
    with as_user(conn, other_patient):
        request(conn, other_slot)
    return World(
        ids={
            "practitioner": doctor,
            "patient": patient,
            "other_patient": other_patient,
            "other_practitioner": other_doctor,
            "admin": admin,
            "anon": None,
        },
        service=service,
        open_slot=open_slot,
        pending_request=uuid.UUID(pending),
        reservation=row[0],
    )


def as_actor(
    conn: psycopg.Connection, user_id: uuid.UUID | None
) -> AbstractContextManager[psycopg.Connection]:
    return as_anon(conn) if user_id is None else as_user(conn, user_id)


def probe(conn: psycopg.Connection, world: World, actor: str, query: str) -> int | str:
    """Rows returned or touched by ``query`` as ``actor`` (rolled back), or its SQLSTATE."""
    params = {
        "me": world.ids[actor],
        "doctor": world.ids["practitioner"],
        "service": world.service,
        "slot": world.open_slot,
        "request": world.pending_request,
        "reservation": world.reservation,
    }
    result: int | str = "not run"
    try:
        with as_actor(conn, world.ids[actor]) as request_conn:
            cursor = request_conn.execute(query, params)
            result = len(cursor.fetchall()) if cursor.description else cursor.rowcount
            raise psycopg.Rollback
    except psycopg.Error as exc:
        return exc.sqlstate or "?"
    return result


DENIED = "42501"  # permission denied, or new row violates row-level security policy

# (query, outcome per actor in ACTORS order)
MATRIX: dict[str, tuple[str, tuple[int | str, ...]]] = {
    # medical_service: the catalogue shows active services; the owner also sees withdrawn ones.
    "read services": (
        "select id from public.medical_service where profile_id = %(doctor)s",
        (2, 1, 1, 1, 2, 1),
    ),
    "add a service for oneself": (
        "insert into public.medical_service (profile_id, name, duration)"
        " values (coalesce(%(me)s, %(doctor)s), 'New', 30)",
        (1, DENIED, DENIED, 1, DENIED, DENIED),
    ),
    "add a service for the practitioner": (
        "insert into public.medical_service (profile_id, name, duration)"
        " values (%(doctor)s, 'New', 30)",
        (1, DENIED, DENIED, DENIED, DENIED, DENIED),
    ),
    "update services": (
        "update public.medical_service set price = 10 where profile_id = %(doctor)s",
        (2, 0, 0, 0, 0, DENIED),
    ),
    "delete services": (
        "delete from public.medical_service where profile_id = %(doctor)s",
        (DENIED,) * 6,
    ),
    # availability_rule: the practitioner's own business.
    "read rules": (
        "select id from public.availability_rule where profile_id = %(doctor)s",
        (1, 0, 0, 0, 1, DENIED),
    ),
    "add a rule for the practitioner": (
        "insert into public.availability_rule (profile_id, day_of_week, start_time, end_time)"
        " values (%(doctor)s, 2, '09:00', '12:00')",
        (1, DENIED, DENIED, DENIED, DENIED, DENIED),
    ),
    "update rules": (
        "update public.availability_rule set buffer_time = 5 where profile_id = %(doctor)s",
        (1, 0, 0, 0, 0, DENIED),
    ),
    "delete rules": (
        "delete from public.availability_rule where profile_id = %(doctor)s",
        (1, 0, 0, 0, 0, DENIED),
    ),
    # time_slot: everyone sees the bookable slot; the practitioner (and admins) all three.
    "read slots": (
        "select id from public.time_slot where profile_id = %(doctor)s",
        (3, 1, 1, 1, 3, 1),
    ),
    "add a slot for the practitioner": (
        "insert into public.time_slot (profile_id, service_id, start_time, end_time)"
        " values (%(doctor)s, %(service)s, '2030-01-01 09:00Z', '2030-01-01 09:30Z')",
        (1, DENIED, DENIED, DENIED, DENIED, DENIED),
    ),
    "change a slot's capacity": (
        "update public.time_slot set max_reservations = 4 where id = %(slot)s",
        (1, 0, 0, 0, 0, DENIED),
    ),
    "change a slot's status directly": (
        "update public.time_slot set status = 'blocked' where id = %(slot)s",
        (DENIED,) * 6,
    ),
    "delete slots": ("delete from public.time_slot where profile_id = %(doctor)s", (DENIED,) * 6),
    # reservation_request: patient details, for the practitioner and the patient only.
    "read requests": (
        "select patient_phone from public.reservation_request where profile_id = %(doctor)s",
        (2, 2, 0, 0, 0, DENIED),
    ),
    "insert a request directly": (
        "insert into public.reservation_request (slot_id, patient_name, patient_phone,"
        " requested_time) values (%(slot)s, 'X', '+34600000000', now())",
        (DENIED,) * 6,
    ),
    "approve a request directly": (
        "update public.reservation_request set status = 'approved' where id = %(request)s",
        (DENIED,) * 6,
    ),
    "delete requests": (
        "delete from public.reservation_request where profile_id = %(doctor)s",
        (DENIED,) * 6,
    ),
    # reservation: patient details; the practitioner updates notes and outcome.
    "read reservations": (
        "select patient_phone from public.reservation where profile_id = %(doctor)s",
        (1, 1, 0, 0, 0, DENIED),
    ),
    "insert a reservation directly": (
        "insert into public.reservation (slot_id, patient_name, patient_phone)"
        " values (%(slot)s, 'X', '+34600000000')",
        (DENIED,) * 6,
    ),
    "update a reservation's notes": (
        "update public.reservation set notes = 'Bring results' where id = %(reservation)s",
        (1, 0, 0, 0, 0, DENIED),
    ),
    "update a reservation's reminders": (
        "update public.reservation set reminder_24h_sent = true where id = %(reservation)s",
        (DENIED,) * 6,
    ),
    "delete reservations": (
        "delete from public.reservation where id = %(reservation)s",
        (DENIED,) * 6,
    ),
    # appointment_note: the private note for its author only, the shared one for the patient.
    "read notes": (
        "select content from public.appointment_note where reservation_id = %(reservation)s",
        (2, 1, 0, 0, 0, DENIED),
    ),
    "write a note on the reservation": (
        "insert into public.appointment_note (reservation_id, profile_id, note_type, content)"
        " values (%(reservation)s, coalesce(%(me)s, %(doctor)s), 'treatment', 'Rest')",
        (1, DENIED, DENIED, DENIED, DENIED, DENIED),
    ),
    # Notes are append-only clinical records: a correction is a new note (test_clinical_records).
    "update notes": (
        "update public.appointment_note set content = 'Edited'"
        " where reservation_id = %(reservation)s",
        (DENIED,) * 6,
    ),
    "delete notes": (
        "delete from public.appointment_note where reservation_id = %(reservation)s",
        (DENIED,) * 6,
    ),
    # RPCs
    "request a reservation": (
        "select public.request_reservation(%(slot)s, 'Maria', '+34600111222')",
        (1,) * 6,
    ),
    "approve the pending request": (
        "select public.approve_reservation_request(%(request)s)",
        (1, "CH008", "CH008", "CH008", "CH008", DENIED),
    ),
    "reject the pending request": (
        "select public.reject_reservation_request(%(request)s, 'No')",
        (1, "CH008", "CH008", "CH008", "CH008", DENIED),
    ),
    "cancel the reservation": (
        "select public.cancel_reservation(%(reservation)s, 'Cannot come')",
        (1, 1, "CH008", "CH008", "CH008", DENIED),
    ),
    "block the open slot": (
        "select public.block_time_slot(%(slot)s)",
        (1, "CH008", "CH008", "CH008", "CH008", DENIED),
    ),
    "unblock the open slot": (
        "select public.unblock_time_slot(%(slot)s)",
        (1, "CH008", "CH008", "CH008", "CH008", DENIED),
    ),
    "generate the practitioner's slots": (
        "select public.generate_time_slots(%(doctor)s, %(service)s, '2030-01-01', '2030-01-07')",
        (1, "CH008", "CH008", "CH008", "CH008", DENIED),
    ),
    "run the expiry sweeps": (
        "select public.expire_reservation_requests(), public.expire_time_slots()",
        (DENIED,) * 6,
    ),
}


@pytest.mark.parametrize("case", list(MATRIX))
def test_scheduling_role_matrix(conn: psycopg.Connection, world: World, case: str) -> None:
    query, expected = MATRIX[case]
    observed = tuple(probe(conn, world, actor, query) for actor in ACTORS)
    assert dict(zip(ACTORS, observed, strict=True)) == dict(zip(ACTORS, expected, strict=True))


def test_public_catalogue_carries_no_patient_data(conn: psycopg.Connection) -> None:
    columns = {
        table: {
            name
            for (name,) in conn.execute(
                "select column_name from information_schema.column_privileges"
                " where table_schema = 'public' and table_name = %s and grantee = 'anon'"
                " and privilege_type = 'SELECT'",
                [table],
            )
        }
        for table in ("medical_service", "time_slot")
    }
    assert all(not any(c.startswith("patient") for c in cols) for cols in columns.values())
    anon_tables = {
        name
        for (name,) in conn.execute(
            "select distinct table_name from information_schema.table_privileges"
            " where table_schema = 'public' and grantee = 'anon'"
        )
    }
    assert (
        anon_tables
        & {"reservation_request", "reservation", "appointment_note", "availability_rule"}
        == set()
    )


def test_a_patient_sees_the_slots_status_change_only_through_the_catalogue(
    conn: psycopg.Connection, world: World
) -> None:
    # Once the open slot is full it leaves the catalogue for everyone but its practitioner.
    with as_anon(conn):
        request(conn, world.open_slot, phone="+34600000001")
        request(conn, world.open_slot, phone="+34600000002")
    for actor in ("patient", "anon"):
        assert probe(conn, world, actor, "select id from public.time_slot where id = %(slot)s") == 0
    assert (
        probe(conn, world, "practitioner", "select id from public.time_slot where id = %(slot)s")
        == 1
    )


def test_slots_requests_and_reservations_are_published_to_realtime(
    conn: psycopg.Connection,
) -> None:
    published = {
        name
        for (name,) in conn.execute(
            "select tablename from pg_publication_tables"
            " where pubname = 'supabase_realtime' and schemaname = 'public'"
        )
    }
    assert {"time_slot", "reservation_request", "reservation"} <= published
    # Notes and the practitioner's rules stay off the wire.
    assert not {"appointment_note", "availability_rule"} & published
