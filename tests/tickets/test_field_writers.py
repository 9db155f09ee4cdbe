"""Each side writes only its own fields of a ticket, nothing changes after the end, and the
timeline keeps what was there (access issue, rule 7). ticket_field_writers is the data."""

from __future__ import annotations

import psycopg
import pytest

from tests.helpers import as_user, create_user
from tests.tickets.factories import make_world, raises_sqlstate, ticket_at, write_prescription

REQUESTER_FIELDS = ("title", "description", "urgency", "category", "metadata")
FULFILLER_FIELDS = ("scheduled_time", "session_mode", "meeting_link")
VALUES = {
    "title": "'Rewritten'",
    "description": "'Healthy'",
    "urgency": "'low'",
    "category": "'imaging'",
    "metadata": "'{\"forged\": true}'",
    "scheduled_time": "now() + interval '90 days'",
    "session_mode": "'chat'",
    "meeting_link": "'https://evil.example/phish'",
}


def test_field_writers_are_data_every_signed_in_user_reads(conn: psycopg.Connection) -> None:
    user = create_user(conn, "patient")
    with as_user(conn, user) as c:
        rows = set(
            c.execute(
                "select ticket_type, column_name, actor from public.ticket_field_writers"
            ).fetchall()
        )
    expected = set()
    for ticket_type in ("prescription", "referral", "diagnostic"):
        expected |= {(ticket_type, f, "primary") for f in REQUESTER_FIELDS}
    for ticket_type in ("consultation", "counseling"):
        expected |= {(ticket_type, f, "patient") for f in REQUESTER_FIELDS}
    for ticket_type in ("consultation", "referral", "diagnostic", "counseling"):
        expected |= {(ticket_type, f, "secondary") for f in FULFILLER_FIELDS}
    assert rows == expected
    with as_user(conn, user) as c, raises_sqlstate("42501"):
        c.execute("delete from public.ticket_field_writers")


@pytest.mark.parametrize("field", REQUESTER_FIELDS)
def test_only_the_requester_writes_what_the_ticket_asks_for(
    conn: psycopg.Connection, field: str
) -> None:
    world = make_world(conn)
    diagnostic = ticket_at(conn, world, "diagnostic", "scheduled")
    update = f"update public.healthcare_tickets set {field} = {VALUES[field]} where id = %s"
    # The attacks: the patient rewrites the doctor's order, the centre rewrites it too.
    for user in (world.patient, world.diagnostics.staff, world.admin):
        with as_user(conn, user) as c, raises_sqlstate("CH007", field):
            c.execute(update, [diagnostic])
    with as_user(conn, world.doctor.staff) as c:
        assert c.execute(update, [diagnostic]).rowcount == 1
    # On a patient-opened ticket the requester is the patient.
    consultation = ticket_at(conn, world, "consultation", "accepted")
    with as_user(conn, world.gp.staff) as c, raises_sqlstate("CH007", field):
        c.execute(update, [consultation])
    with as_user(conn, world.patient) as c:
        assert c.execute(update, [consultation]).rowcount == 1


def test_pharmacy_staff_cannot_rewrite_a_prescription_ticket(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", "received")
    for field in ("title", "metadata", "meeting_link", "scheduled_time"):
        with as_user(conn, world.pharmacy.staff) as c, raises_sqlstate("CH007", field):
            c.execute(
                f"update public.healthcare_tickets set {field} = {VALUES[field]} where id = %s",
                [ticket],
            )


@pytest.mark.parametrize("field", FULFILLER_FIELDS)
def test_only_the_fulfiller_schedules(conn: psycopg.Connection, field: str) -> None:
    world = make_world(conn)
    counseling = ticket_at(conn, world, "counseling", "scheduled")
    update = f"update public.healthcare_tickets set {field} = {VALUES[field]} where id = %s"
    # The attack: the patient swaps the meeting link (or the time, or the mode).
    for user in (world.patient, world.admin):
        with as_user(conn, user) as c, raises_sqlstate("CH007", field):
            c.execute(update, [counseling])
    with as_user(conn, world.counselor.staff) as c:
        assert c.execute(update, [counseling]).rowcount == 1
    diagnostic = ticket_at(conn, world, "diagnostic", "scheduled")
    with as_user(conn, world.doctor.owner) as c, raises_sqlstate("CH007", field):
        c.execute(update, [diagnostic])
    with as_user(conn, world.diagnostics.staff) as c:
        assert c.execute(update, [diagnostic]).rowcount == 1


def test_nobody_but_the_system_changes_a_ticket_that_ended(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    cancelled = ticket_at(conn, world, "consultation", "cancelled")
    with as_user(conn, world.patient) as c, raises_sqlstate("CH007", "final"):
        c.execute(
            "update public.healthcare_tickets set title = 'after the end' where id = %s",
            [cancelled],
        )
    closed = ticket_at(conn, world, "counseling", "closed")
    with as_user(conn, world.counselor.staff) as c, raises_sqlstate("CH007", "final"):
        c.execute(
            "update public.healthcare_tickets set meeting_link = 'https://x.example' where id = %s",
            [closed],
        )
    conn.execute(
        "update public.healthcare_tickets set metadata = '{\"archived\": true}' where id = %s",
        [cancelled],
    )


def test_patients_do_not_set_the_fulfillers_fields_when_opening(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    with as_user(conn, world.patient) as c, raises_sqlstate("CH007", "meeting_link"):
        c.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id, session_mode,"
            " meeting_link) values ('counseling', %s, 'video', 'https://evil.example')",
            [world.patient],
        )


def test_the_timeline_keeps_old_and_new_values_of_every_changed_field(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "referral", "created", description="Palpitations")
    with as_user(conn, world.doctor.staff) as c:
        c.execute(
            "update public.healthcare_tickets set description = 'Chest pain', urgency = 'high'"
            " where id = %s",
            [ticket],
        )
        c.execute(
            "update public.healthcare_tickets set status = 'sent', title = 'Cardiology'"
            " where id = %s",
            [ticket],
        )
    rows = conn.execute(
        "select event_type, details -> 'changes' from public.ticket_timeline"
        " where ticket_id = %s and event_type in ('updated', 'status_changed')"
        " order by created_at",
        [ticket],
    ).fetchall()
    assert rows[0] == (
        "updated",
        {
            "description": {"old": "Palpitations", "new": "Chest pain"},
            "urgency": {"old": "normal", "new": "high"},
        },
    )
    assert rows[1][0] == "status_changed"
    assert rows[1][1]["title"] == {"old": None, "new": "Cardiology"}
    assert rows[1][1]["sent_at"]["old"] is None  # bookkeeping the trigger set is recorded too


def test_the_timeline_keeps_the_prescription_a_draft_had_before(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", with_prescription=False)
    first, second = (
        write_prescription(conn, world.doctor.owner, world.pharmacy.provider, world.patient)
        for _ in range(2)
    )
    with as_user(conn, world.doctor.owner) as c:
        for rx in (first, second):
            c.execute(
                "update public.healthcare_tickets set prescription_id = %s where id = %s",
                [rx, ticket],
            )
    rows = conn.execute(
        "select details from public.ticket_timeline where ticket_id = %s"
        " and event_type = 'prescription_linked' order by created_at",
        [ticket],
    ).fetchall()
    assert [r[0] for r in rows] == [
        {"prescription_id": str(first)},
        {"prescription_id": str(second), "from_prescription_id": str(first)},
    ]
