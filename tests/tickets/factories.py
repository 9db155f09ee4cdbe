"""Factories for ticket tests: a small world of people and providers, tickets, prescriptions
and reservations, all written as the system (the test's superuser connection)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.helpers import create_provider, create_user

TICKET_TYPES = ("prescription", "consultation", "referral", "diagnostic", "counseling")
FULFILLER_KIND = {
    "prescription": "pharmacy",
    "consultation": "doctor",
    "referral": "specialist",
    "diagnostic": "diagnostics_center",
    "counseling": "counselor",
}


_SLOT_BASE = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1)
_SLOT_NUMBERS = itertools.count()


@contextmanager
def raises_sqlstate(sqlstate: str, match: str | None = None) -> Iterator[None]:
    """Expect the block to fail with SQLSTATE ``sqlstate`` (and a message containing match)."""
    with pytest.raises(psycopg.Error) as caught:
        yield
    assert caught.value.sqlstate == sqlstate, f"{caught.value.sqlstate}: {caught.value}"
    if match is not None:
        assert match in str(caught.value), str(caught.value)


@dataclass
class Party:
    """A provider and the users acting for it."""

    provider: uuid.UUID
    owner: uuid.UUID
    staff: uuid.UUID

    @property
    def members(self) -> set[uuid.UUID]:
        return {self.owner, self.staff}


@dataclass
class World:
    admin: uuid.UUID
    patient: uuid.UUID
    other_patient: uuid.UUID
    doctor: Party  # requester (primary) of prescriptions, referrals, diagnostics
    gp: Party  # doctor practice fulfilling consultations
    pharmacy: Party
    other_pharmacy: Party  # an unrelated provider of the same kind as the fulfiller
    specialist: Party
    diagnostics: Party
    counselor: Party
    other_counselor: Party  # eligible claimer of counselling tickets

    def fulfiller(self, ticket_type: str) -> Party:
        return {
            "prescription": self.pharmacy,
            "consultation": self.gp,
            "referral": self.specialist,
            "diagnostic": self.diagnostics,
            "counseling": self.counselor,
        }[ticket_type]


def _party(conn: psycopg.Connection, kind: str, role: str, **provider: Any) -> Party:
    owner = create_user(conn, role)
    staff = create_user(conn, role)
    provider_id = create_provider(conn, kind, owner=owner, staff=[staff], **provider)
    return Party(provider_id, owner, staff)


def make_world(conn: psycopg.Connection) -> World:
    return World(
        admin=create_user(conn, "admin"),
        patient=create_user(conn, "patient"),
        other_patient=create_user(conn, "patient"),
        doctor=_party(conn, "doctor", "doctor"),
        gp=_party(conn, "doctor", "doctor"),
        pharmacy=_party(conn, "pharmacy", "pharmacist"),
        other_pharmacy=_party(conn, "pharmacy", "pharmacist"),
        specialist=_party(conn, "specialist", "specialist"),
        diagnostics=_party(conn, "diagnostics_center", "diagnostics"),
        counselor=_party(conn, "counselor", "counselor", expertise=["anxiety"]),
        other_counselor=_party(conn, "counselor", "counselor", expertise=["anxiety", "stress"]),
    )


def insert_ticket(conn: psycopg.Connection, ticket_type: str, **columns: Any) -> uuid.UUID:
    """Insert a ticket as the system; returns its id."""
    names = ["ticket_type", *columns]
    values = [ticket_type, *columns.values()]
    row = conn.execute(
        f"insert into public.healthcare_tickets ({', '.join(names)})"
        f" values ({', '.join(['%s'] * len(values))}) returning id",
        values,
    ).fetchone()
    assert row is not None
    return row[0]


def write_prescription(
    conn: psycopg.Connection,
    doctor: uuid.UUID,
    pharmacy: uuid.UUID,
    patient: uuid.UUID | None,
    appointment: uuid.UUID | None = None,
) -> uuid.UUID:
    row = conn.execute(
        "insert into public.prescriptions (doctor_id, pharmacy_id, patient_id, appointment_id,"
        ' medications) values (%s, %s, %s, %s, \'[{"name": "Amoxicillin 500 mg"}]\')'
        " returning id",
        [doctor, pharmacy, patient, appointment],
    ).fetchone()
    assert row is not None
    return row[0]


def ticket_at(
    conn: psycopg.Connection,
    world: World,
    ticket_type: str,
    status: str | None = None,
    *,
    open_for_claim: bool = False,
    with_prescription: bool = True,
    **columns: Any,
) -> uuid.UUID:
    """A ticket of world's patient at ``status``, reached the way the system would."""
    fulfiller = None if open_for_claim else world.fulfiller(ticket_type).provider
    cols: dict[str, Any] = {"patient_id": world.patient, "secondary_provider_id": fulfiller}
    if ticket_type in ("prescription", "referral", "diagnostic"):
        cols["primary_provider_id"] = world.doctor.provider
    if ticket_type == "counseling":
        cols.update(category="anxiety", session_mode="video")
    cols.update(columns)
    if (
        ticket_type == "prescription"
        and "appointment_id" not in cols
        and cols.get("primary_provider_id") == world.doctor.provider
    ):
        # A prescription ticket hangs off the patient's appointment with the prescriber.
        cols["appointment_id"] = make_reservation(conn, world.doctor.owner, cols["patient_id"])
    ticket = insert_ticket(conn, ticket_type, **cols)
    if ticket_type == "prescription" and with_prescription:
        rx = write_prescription(conn, world.doctor.owner, world.pharmacy.provider, world.patient)
        conn.execute(
            "update public.healthcare_tickets set prescription_id = %s where id = %s", [rx, ticket]
        )
    if ticket_type == "diagnostic" and status in ("scheduled", "results_ready"):
        # A diagnostic order is scheduled with its time, and its results are ready with a file.
        conn.execute(
            "update public.healthcare_tickets set scheduled_time = now() + interval '1 day'"
            " where id = %s",
            [ticket],
        )
        if status == "results_ready":
            attach_file(conn, ticket, "results", world.diagnostics.staff)
    if ticket_type == "counseling" and status in ("scheduled", "completed"):
        conn.execute(
            "update public.healthcare_tickets set scheduled_time = now() + interval '1 day',"
            " meeting_link = 'https://meet.example/x' where id = %s",
            [ticket],
        )
    if status is not None:
        set_status(conn, ticket, status)
    return ticket


def set_status(conn: psycopg.Connection, ticket: uuid.UUID, status: str) -> None:
    """Move a ticket to ``status`` as the system (skip-forward)."""
    conn.execute(
        "update public.healthcare_tickets set status = %s where id = %s and status <> %s",
        [status, ticket, status],
    )


def ticket_status(conn: psycopg.Connection, ticket: uuid.UUID) -> str:
    row = conn.execute(
        "select status from public.healthcare_tickets where id = %s", [ticket]
    ).fetchone()
    assert row is not None
    return row[0]


def make_reservation(
    conn: psycopg.Connection,
    practitioner: uuid.UUID,
    patient: uuid.UUID | None,
    *,
    name: str = "Pat Patient",
) -> uuid.UUID:
    """A confirmed reservation with practitioner, inserted directly as the system."""
    service = conn.execute(
        "insert into public.medical_service (profile_id, name, duration) values (%s, 'Visit', 30)"
        " returning id",
        [practitioner],
    ).fetchone()
    assert service is not None
    # Each reservation of a test run gets its own slot time: a practitioner's slots never
    # overlap (exclusion constraint), so random times would collide now and then.
    start = _SLOT_BASE + timedelta(minutes=2 * next(_SLOT_NUMBERS))
    slot = conn.execute(
        "insert into public.time_slot (profile_id, service_id, start_time, end_time)"
        " values (%s, %s, %s, %s) returning id",
        [practitioner, service[0], start, start + timedelta(minutes=1)],
    ).fetchone()
    assert slot is not None
    reservation = conn.execute(
        "insert into public.reservation (profile_id, slot_id, service_id, patient_id,"
        " patient_name, patient_phone) values (%s, %s, %s, %s, %s, '+15555550100') returning id",
        [practitioner, slot[0], service[0], patient, name],
    ).fetchone()
    assert reservation is not None
    return reservation[0]


FOLDER_KIND = {"results": "result", "images": "image", "documents": "document"}


def attach_file(
    conn: psycopg.Connection,
    ticket: uuid.UUID,
    folder: str,
    uploader: uuid.UUID,
    *,
    file_name: str = "report.pdf",
    mimetype: str = "application/pdf",
) -> uuid.UUID:
    """A file of ``ticket`` as the system stores it: the object in bucket ticket-files under
    <ticket>/<folder>/<file_name> (what the Storage API writes) and its ticket_attachments row.
    Returns the attachment id."""
    name = f"{ticket}/{folder}/{file_name}"
    conn.execute(
        "insert into storage.objects (bucket_id, name, owner, owner_id, metadata)"
        " values ('ticket-files', %s, %s, %s,"
        " jsonb_build_object('size', 1234, 'mimetype', %s::text))",
        [name, uploader, str(uploader), mimetype],
    )
    row = conn.execute(
        "insert into public.ticket_attachments (ticket_id, object_name, kind, content_type,"
        " size_bytes, uploaded_by) values (%s, %s, %s, %s, 1234, %s) returning id",
        [ticket, name, FOLDER_KIND[folder], mimetype, uploader],
    ).fetchone()
    assert row is not None
    return row[0]
