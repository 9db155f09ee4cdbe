"""Clinical records are kept (access issue, rule 11): appointment notes are append-only, and
deleting a practitioner's or a patient's account never deletes reservations or notes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
import pytest

from tests.helpers import as_service, as_user, create_user
from tests.scheduling.factories import create_practitioner, create_service, create_slot, request


@dataclass
class Visit:
    doctor: uuid.UUID
    patient: uuid.UUID
    reservation: uuid.UUID
    diagnosis: uuid.UUID


def refusal(conn: psycopg.Connection, query: str, params: list[object]) -> tuple[str | None, str]:
    try:
        with conn.transaction():
            conn.execute(query, params)
    except psycopg.Error as exc:
        return exc.sqlstate, exc.diag.message_primary or ""
    return None, ""


def write_note(
    conn: psycopg.Connection,
    author: uuid.UUID,
    reservation: uuid.UUID,
    content: str,
    *,
    supersedes: uuid.UUID | None = None,
    is_private: bool = False,
) -> uuid.UUID:
    with as_user(conn, author):
        row = conn.execute(
            "insert into public.appointment_note (reservation_id, profile_id, note_type,"
            " content, is_private, supersedes_id) values (%s, %s, 'diagnosis', %s, %s, %s)"
            " returning id",
            [reservation, author, content, is_private, supersedes],
        ).fetchone()
    assert row is not None
    return row[0]


def book(conn: psycopg.Connection, doctor: uuid.UUID, patient: uuid.UUID) -> uuid.UUID:
    slot = create_slot(conn, doctor, create_service(conn, doctor))
    with as_user(conn, patient):
        held = request(conn, slot)["request_id"]
    row = conn.execute("select id from public.approve_reservation_request(%s)", [held]).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture
def visit(conn: psycopg.Connection) -> Visit:
    doctor = create_practitioner(conn)
    patient = create_user(conn, "patient")
    reservation = book(conn, doctor, patient)
    return Visit(
        doctor=doctor,
        patient=patient,
        reservation=reservation,
        diagnosis=write_note(conn, doctor, reservation, "Bronchitis"),
    )


def test_the_author_cannot_rewrite_or_delete_a_note(conn: psycopg.Connection, visit: Visit) -> None:
    # The attack of rule 11: the diagnosis becomes "healthy", or disappears.
    with as_user(conn, visit.doctor):
        assert (
            refusal(
                conn,
                "update public.appointment_note set content = 'Healthy' where id = %s",
                [visit.diagnosis],
            )[0]
            == "42501"
        )
        assert (
            refusal(conn, "delete from public.appointment_note where id = %s", [visit.diagnosis])[0]
            == "42501"
        )
    # Not the system either.
    for query in (
        "update public.appointment_note set content = 'Healthy' where id = %s",
        "delete from public.appointment_note where id = %s",
    ):
        assert refusal(conn, query, [visit.diagnosis])[0] == "CH007"
        with as_service(conn):
            assert refusal(conn, query, [visit.diagnosis])[0] == "42501"
    assert conn.execute(
        "select content from public.appointment_note where id = %s", [visit.diagnosis]
    ).fetchone() == ("Bronchitis",)


def test_a_correction_is_a_new_note_and_the_old_one_stays_readable(
    conn: psycopg.Connection, visit: Visit
) -> None:
    correction = write_note(
        conn, visit.doctor, visit.reservation, "Pneumonia", supersedes=visit.diagnosis
    )
    query = "select id, content, supersedes_id from public.appointment_note order by created_at"
    expected = [
        (visit.diagnosis, "Bronchitis", None),
        (correction, "Pneumonia", visit.diagnosis),
    ]
    with as_user(conn, visit.doctor):
        assert conn.execute(query).fetchall() == expected
    with as_user(conn, visit.patient):
        assert conn.execute(query).fetchall() == expected
    # One correction per note: a second one corrects the correction.
    with as_user(conn, visit.doctor):
        assert (
            refusal(
                conn,
                "insert into public.appointment_note (reservation_id, profile_id, note_type,"
                " content, supersedes_id) values (%s, %s, 'diagnosis', 'Asthma', %s)",
                [visit.reservation, visit.doctor, visit.diagnosis],
            )[0]
            == "23505"
        )


def test_a_correction_names_one_of_the_authors_notes_on_the_same_reservation(
    conn: psycopg.Connection, visit: Visit
) -> None:
    other_doctor = create_practitioner(conn)
    other_reservation = book(conn, other_doctor, visit.patient)
    own_other_reservation = book(conn, visit.doctor, create_user(conn, "patient"))
    query = (
        "insert into public.appointment_note (reservation_id, profile_id, note_type, content,"
        " supersedes_id) values (%s, %s, 'diagnosis', 'X', %s)"
    )
    missing = uuid.uuid4()
    with as_user(conn, other_doctor):
        code, message = refusal(conn, query, [other_reservation, other_doctor, visit.diagnosis])
        code_missing, message_missing = refusal(
            conn, query, [other_reservation, other_doctor, missing]
        )
    assert code == code_missing == "CH008"
    assert message.replace(str(visit.diagnosis), "X") == message_missing.replace(str(missing), "X")
    with as_user(conn, visit.doctor):
        assert (
            refusal(conn, query, [own_other_reservation, visit.doctor, visit.diagnosis])[0]
            == "CH008"
        )


def test_deleting_a_practitioners_account_is_refused_and_keeps_their_records(
    conn: psycopg.Connection, visit: Visit
) -> None:
    code, message = refusal(conn, "delete from auth.users where id = %s", [visit.doctor])
    assert code == "23503"
    assert "cannot be deleted" in message
    # Nor through their slots or services.
    for query in (
        "delete from public.time_slot where profile_id = %s",
        "delete from public.medical_service where profile_id = %s",
    ):
        assert refusal(conn, query, [visit.doctor])[0] == "23503"
    assert conn.execute(
        "select (select count(*) from public.reservation where profile_id = %(d)s),"
        " (select count(*) from public.appointment_note where profile_id = %(d)s)",
        {"d": visit.doctor},
    ).fetchone() == (1, 1)


def test_deleting_a_practitioner_without_clinical_records_is_allowed(
    conn: psycopg.Connection,
) -> None:
    doctor = create_practitioner(conn)
    create_slot(conn, doctor, create_service(conn, doctor))
    conn.execute("delete from auth.users where id = %s", [doctor])
    assert conn.execute(
        "select count(*) from public.profile where id = %s", [doctor]
    ).fetchone() == (0,)


def test_deleting_a_patients_account_keeps_the_reservation_and_its_notes(
    conn: psycopg.Connection, visit: Visit
) -> None:
    conn.execute("delete from auth.users where id = %s", [visit.patient])
    assert conn.execute(
        "select r.patient_id, r.patient_name, r.status, count(n.id)"
        " from public.reservation as r left join public.appointment_note as n"
        " on n.reservation_id = r.id where r.id = %s group by r.id",
        [visit.reservation],
    ).fetchone() == (None, "Maria Garcia", "confirmed", 1)
