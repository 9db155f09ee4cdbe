"""get_or_create_prescription_ticket: the requester is chosen deterministically (access issue,
rule 5), only the caller's practice's own ticket is returned, and a missing appointment and one
the caller may not see get the same answer (rules 8 and 9)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.helpers import add_member, as_user, create_provider, create_user
from tests.scheduling.factories import create_service


@dataclass
class Clinic:
    doctor: uuid.UUID
    practice: uuid.UUID
    attacker: uuid.UUID
    attacker_practice: uuid.UUID
    pharmacy: uuid.UUID
    patient: uuid.UUID
    appointment: uuid.UUID


def make_appointment(
    conn: psycopg.Connection, practitioner: uuid.UUID, patient: uuid.UUID
) -> uuid.UUID:
    service = create_service(conn, practitioner)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(
        days=2, minutes=uuid.uuid4().int % 10000
    )
    row = conn.execute(
        "with slot as (insert into public.time_slot (profile_id, service_id, start_time,"
        " end_time) values (%(d)s, %(s)s, %(t)s, %(t)s + interval '1 minute') returning id)"
        " insert into public.reservation (profile_id, slot_id, service_id, patient_id,"
        " patient_name, patient_phone) select %(d)s, slot.id, %(s)s, %(p)s, 'Pat Patient',"
        " '+15555550100' from slot returning id",
        {"d": practitioner, "s": service, "t": start, "p": patient},
    ).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture
def clinic(conn: psycopg.Connection) -> Clinic:
    doctor = create_user(conn, "doctor")
    attacker = create_user(conn, "doctor")
    patient = create_user(conn, "patient")
    return Clinic(
        doctor=doctor,
        practice=create_provider(conn, "doctor", owner=doctor),
        attacker=attacker,
        attacker_practice=create_provider(conn, "clinic", owner=attacker),
        pharmacy=create_provider(conn, "pharmacy", owner=create_user(conn, "pharmacist")),
        patient=patient,
        appointment=make_appointment(conn, doctor, patient),
    )


def get_or_create(
    conn: psycopg.Connection, user: uuid.UUID, appointment: uuid.UUID, pharmacy: uuid.UUID
) -> tuple[str | None, str, tuple | None]:
    """(sqlstate or None, message, (id, primary_provider_id) or None) of the call as user."""
    try:
        with as_user(conn, user):
            row = conn.execute(
                "select id, primary_provider_id"
                " from public.get_or_create_prescription_ticket(%s, %s)",
                [appointment, pharmacy],
            ).fetchone()
    except psycopg.Error as exc:
        return exc.sqlstate, exc.diag.message_primary or "", None
    return None, "", row


def test_the_only_practice_is_the_requester(conn: psycopg.Connection, clinic: Clinic) -> None:
    code, _, row = get_or_create(conn, clinic.doctor, clinic.appointment, clinic.pharmacy)
    assert code is None
    assert row is not None
    assert row[1] == clinic.practice


def test_a_second_practice_without_a_default_is_refused_asking_for_one(
    conn: psycopg.Connection, clinic: Clinic
) -> None:
    # The doctor accepted (here: an admin added) a second practice, the attacker's.
    add_member(conn, clinic.attacker_practice, clinic.doctor)
    for caller in (clinic.doctor, clinic.attacker):
        code, message, _ = get_or_create(conn, caller, clinic.appointment, clinic.pharmacy)
        assert code == "CH008"
        assert "has not chosen one" in message
    with as_user(conn, clinic.doctor):
        conn.execute("select public.set_default_provider(%s)", [clinic.practice])
    code, _, row = get_or_create(conn, clinic.doctor, clinic.appointment, clinic.pharmacy)
    assert (code, row and row[1]) == (None, clinic.practice)
    # The other practice's owner is no requester of the doctor's patients.
    code, message, _ = get_or_create(conn, clinic.attacker, clinic.appointment, clinic.pharmacy)
    assert code == "CH008"
    assert "not an appointment of your practice" in message


def test_a_default_that_is_not_a_doctor_or_clinic_provider_is_ignored(
    conn: psycopg.Connection, clinic: Clinic
) -> None:
    add_member(conn, clinic.pharmacy, clinic.doctor)
    with as_user(conn, clinic.doctor):
        conn.execute("select public.set_default_provider(%s)", [clinic.pharmacy])
    code, _, row = get_or_create(conn, clinic.doctor, clinic.appointment, clinic.pharmacy)
    assert (code, row and row[1]) == (None, clinic.practice)


def test_a_missing_appointment_and_someone_elses_get_the_same_answer(
    conn: psycopg.Connection, clinic: Clinic
) -> None:
    missing = uuid.uuid4()
    code_missing, message_missing, _ = get_or_create(
        conn, clinic.attacker, missing, clinic.pharmacy
    )
    code_hidden, message_hidden, _ = get_or_create(
        conn, clinic.attacker, clinic.appointment, clinic.pharmacy
    )
    assert code_missing == code_hidden == "CH008"
    assert message_missing.replace(str(missing), "X") == message_hidden.replace(
        str(clinic.appointment), "X"
    )


def test_a_planted_ticket_is_never_returned(conn: psycopg.Connection, clinic: Clinic) -> None:
    # The attack of rule 8: a ticket with the victim's appointment and pharmacy, primary the
    # attacker's. Planted with triggers off (the ticket trigger refuses it since rule 8).
    conn.execute("set session_replication_role = replica")
    planted = conn.execute(
        "insert into public.healthcare_tickets (ticket_type, status, patient_id,"
        " primary_provider_id, secondary_provider_id, required_provider_kind, appointment_id,"
        " title) values ('prescription', 'created', %s, %s, %s, 'pharmacy', %s, 'planted')"
        " returning id",
        [clinic.patient, clinic.attacker_practice, clinic.pharmacy, clinic.appointment],
    ).fetchone()
    conn.execute("set session_replication_role = origin")
    assert planted is not None
    code, message, row = get_or_create(conn, clinic.doctor, clinic.appointment, clinic.pharmacy)
    assert row is None
    assert code == "CH008"
    assert str(planted[0]) not in message
