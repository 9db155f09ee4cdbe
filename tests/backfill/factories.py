"""Legacy data as the pre-ticket product wrote it, and ways to run the backfill in tests."""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from app.backfill import Options, Summary, run
from tests.helpers import create_provider, create_user
from tests.tickets.factories import make_reservation

LEGACY_AT = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


@dataclass
class Legacy:
    doctor: uuid.UUID
    practice: uuid.UUID
    pharmacist: uuid.UUID
    pharmacy_staff: uuid.UUID
    pharmacy: uuid.UUID
    patient: uuid.UUID


def make_legacy_world(conn: psycopg.Connection) -> Legacy:
    doctor = create_user(conn, "doctor")
    practice = create_provider(conn, "doctor", owner=doctor)
    pharmacist = create_user(conn, "pharmacist")
    staff = create_user(conn, "pharmacist")
    pharmacy = create_provider(conn, "pharmacy", owner=pharmacist, staff=[staff])
    patient = create_user(conn, "patient")
    return Legacy(doctor, practice, pharmacist, staff, pharmacy, patient)


def legacy_thread(
    conn: psycopg.Connection,
    *,
    order_id: uuid.UUID | None,
    target_id: uuid.UUID | str | None,
    members: list[tuple[uuid.UUID, str]],
    order_type: str | None = "prescription",
    prescription_id: uuid.UUID | None = None,
    messages: list[uuid.UUID] | None = None,
    created_at: datetime = LEGACY_AT,
    thread_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A legacy chat thread (no ticket) with its members and messages."""
    metadata: dict[str, Any] = {}
    if target_id is not None:
        metadata["target_id"] = str(target_id)
    if prescription_id is not None:
        metadata["prescription_id"] = str(prescription_id)
    row = conn.execute(
        "insert into public.chat_threads (id, order_id, order_type, title, metadata, created_by,"
        " created_at, updated_at) values (coalesce(%s, gen_random_uuid()), %s, %s, 'Legacy chat',"
        " %s, %s, %s, %s) returning id",
        [
            thread_id,
            order_id,
            order_type,
            json.dumps(metadata),
            members[0][0] if members else None,
            created_at,
            created_at,
        ],
    ).fetchone()
    assert row is not None
    for profile_id, role in members:
        conn.execute(
            "insert into public.chat_thread_members (thread_id, profile_id, role)"
            " values (%s, %s, %s)",
            [row[0], profile_id, role],
        )
    for n, sender in enumerate(messages or []):
        conn.execute(
            "insert into public.chat_messages (thread_id, sender_id, body, created_at)"
            " values (%s, %s, %s, %s)",
            [row[0], sender, f"legacy message {n}", created_at],
        )
    return row[0]


def legacy_prescription(
    conn: psycopg.Connection,
    world: Legacy,
    appointment: uuid.UUID | None,
    *,
    patient: uuid.UUID | None = None,
    pharmacy: uuid.UUID | None = None,
    doctor: uuid.UUID | None = None,
    external_order_id: str | None = None,
    created_at: datetime = LEGACY_AT,
) -> uuid.UUID:
    row = conn.execute(
        "insert into public.prescriptions (doctor_id, pharmacy_id, patient_id, appointment_id,"
        " medications, external_order_id, created_at)"
        " values (%s, %s, %s, %s, '[]', %s, %s) returning id",
        [
            doctor or world.doctor,
            pharmacy or world.pharmacy,
            patient or world.patient,
            appointment,
            external_order_id,
            created_at,
        ],
    ).fetchone()
    assert row is not None
    return row[0]


def standard_thread(conn: psycopg.Connection, world: Legacy, **overrides: Any) -> uuid.UUID:
    """The common legacy thread: an appointment of the patient with the doctor, the pharmacy as
    target, doctor, patient and pharmacist as members, each of whom wrote."""
    appointment = overrides.pop("order_id", None) or make_reservation(
        conn, world.doctor, world.patient
    )
    members = overrides.pop(
        "members",
        [(world.doctor, "doctor"), (world.patient, "patient"), (world.pharmacist, "pharmacist")],
    )
    return legacy_thread(
        conn,
        order_id=appointment,
        target_id=overrides.pop("target_id", world.pharmacy),
        members=members,
        messages=overrides.pop("messages", [m for m, _ in members]),
        **overrides,
    )


def backfill(database_url: str, **options: Any) -> tuple[Summary, str]:
    """Run the backfill in this process; returns its summary and what it printed."""
    out = io.StringIO()
    summary = run(Options(database_url=database_url, pause_ms=0, **options), out)
    return summary, out.getvalue()


def ticket_of_thread(conn: psycopg.Connection, thread_id: uuid.UUID) -> dict[str, Any] | None:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "select * from public.healthcare_tickets where legacy_thread_id = %s", [thread_id]
        ).fetchone()


def outcomes(conn: psycopg.Connection, thread_id: uuid.UUID) -> dict[str, str]:
    return dict(
        conn.execute(
            "select reason, detail from private.backfill_thread_outcomes where thread_id = %s",
            [thread_id],
        ).fetchall()
    )


def read_report(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))
