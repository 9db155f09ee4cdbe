"""The portal's success criteria (seed 003, "End-to-End Flow Testing") as end-to-end tests
through the database, each step as the frontends do it (PostgREST requests as each user, Storage
uploads, RPC calls), with the broadcast and the notifications each step must produce."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg

from tests.careflows.helpers import received, register, upload
from tests.helpers import as_user
from tests.tickets.factories import World, make_reservation, make_world


@dataclass
class Step:
    """What one step sent: broadcasts as (topic, event, payload) and notifications as
    (recipient, type)."""

    broadcasts: list[tuple[str, str, dict[str, Any]]]
    notifications: set[tuple[uuid.UUID, str]]

    def events(self, topic: str) -> list[str]:
        return sorted(e for t, e, _ in self.broadcasts if t == topic)

    def statuses(self, ticket: uuid.UUID) -> list[str]:
        return [
            p["status"]
            for t, e, p in self.broadcasts
            if t == f"ticket:{ticket}" and e == "ticket_changed"
        ]

    def notified(self, kind: str) -> set[uuid.UUID]:
        return {r for r, k in self.notifications if k == kind}


@dataclass
class Observer:
    """Collects, step by step, the broadcasts and notifications the database wrote."""

    conn: psycopg.Connection
    seen: set[uuid.UUID] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.step()

    def step(self) -> Step:
        broadcasts = [
            (topic, event, payload)
            for i, topic, event, payload in self.conn.execute(
                "select id, topic, event, payload from realtime.messages"
            )
            if i not in self.seen and not self.seen.add(i)  # type: ignore[func-returns-value]
        ]
        notes = {
            (recipient, kind)
            for i, recipient, kind in self.conn.execute(
                "select id, recipient_id, type from public.notifications"
            )
            if i not in self.seen and not self.seen.add(i)  # type: ignore[func-returns-value]
        }
        step = Step(broadcasts, notes)
        # Each new notification is announced on its recipient's own topic, and only there.
        for recipient, _ in notes:
            assert any(
                t == f"user:{recipient}" and e == "notification_created" for t, e, _ in broadcasts
            ), recipient
        return step


def one(conn: psycopg.Connection, user: uuid.UUID, query: str, params: list[Any]) -> Any:
    with as_user(conn, user) as c:
        row = c.execute(query, params).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def move(conn: psycopg.Connection, user: uuid.UUID, ticket: uuid.UUID, status: str) -> None:
    with as_user(conn, user) as c:
        assert (
            c.execute(
                "update public.healthcare_tickets set status = %s where id = %s", [status, ticket]
            ).rowcount
            == 1
        )


def post(conn: psycopg.Connection, user: uuid.UUID, ticket: uuid.UUID, body: str) -> None:
    with as_user(conn, user) as c:
        c.execute(
            "insert into public.chat_messages (thread_id, body)"
            " select id, %s from public.chat_threads where ticket_id = %s",
            [body, ticket],
        )


def status_as(conn: psycopg.Connection, user: uuid.UUID, ticket: uuid.UUID) -> str | None:
    with as_user(conn, user) as c:
        row = c.execute(
            "select status from public.healthcare_tickets where id = %s", [ticket]
        ).fetchone()
    return row[0] if row else None


def write_and_send_prescription(
    conn: psycopg.Connection, doctor: uuid.UUID, ticket: uuid.UUID, world: World
) -> uuid.UUID:
    """The doctor writes the prescription through the API, links it and sends the ticket."""
    rx = one(
        conn,
        doctor,
        "insert into public.prescriptions (doctor_id, pharmacy_id, patient_id, medications)"
        " values (%s, %s, %s, %s) returning id",
        [doctor, world.pharmacy.provider, world.patient, json.dumps([{"name": "Amoxicillin"}])],
    )
    with as_user(conn, doctor) as c:
        c.execute(
            "insert into public.prescription_items (prescription_id, medication_name, quantity)"
            " values (%s, 'Amoxicillin 500 mg', 21)",
            [rx],
        )
        c.execute(
            "update public.healthcare_tickets set prescription_id = %s, status = 'sent'"
            " where id = %s",
            [rx, ticket],
        )
    return rx


def test_patient_to_gp(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    gp = world.gp
    seen = Observer(conn)

    # The patient requests a consultation from their GP practice.
    consultation = one(
        conn,
        world.patient,
        "insert into public.healthcare_tickets (ticket_type, patient_id, secondary_provider_id,"
        " title, description, urgency, session_mode)"
        " values ('consultation', %s, %s, 'Persistent cough', 'Three weeks', 'normal', 'video')"
        " returning id",
        [world.patient, gp.provider],
    )
    step = seen.step()
    assert step.statuses(consultation) == ["requested"]
    assert step.notified("consultation_requested") == gp.members
    # The GP sees the request at once: in the dashboard and on their own channel.
    assert status_as(conn, gp.staff, consultation) == "requested"
    assert received(conn, gp.staff, f"user:{gp.staff}", "notification_created")

    move(conn, gp.owner, consultation, "accepted")
    step = seen.step()
    assert step.statuses(consultation) == ["accepted"]
    assert step.notified("consultation_accepted") == {world.patient}
    assert "timeline_added" in step.events(f"ticket:{consultation}")

    # Chat both ways.
    post(conn, world.patient, consultation, "It is worse at night")
    step = seen.step()
    assert step.events(f"ticket:{consultation}") == ["message_created"]
    assert step.notified("chat_message") == gp.members
    post(conn, gp.owner, consultation, "Please come in tomorrow")
    step = seen.step()
    assert step.events(f"ticket:{consultation}") == ["message_created"]
    assert step.notified("chat_message") == {world.patient, gp.staff}
    with as_user(conn, world.patient) as c:
        bodies = [
            b for (b,) in c.execute("select body from public.chat_messages order by created_at")
        ]
    assert bodies == ["It is worse at night", "Please come in tomorrow"]

    # The GP creates the prescription from the consultation and sends it.
    prescription = one(
        conn,
        gp.owner,
        "select id from public.create_ticket_from(%s, 'prescription', %s, %s)",
        [consultation, world.pharmacy.provider, json.dumps({"title": "Amoxicillin"})],
    )
    step = seen.step()
    assert "timeline_added" in step.events(f"ticket:{consultation}")
    assert step.statuses(prescription) == ["created"]
    write_and_send_prescription(conn, gp.owner, prescription, world)
    step = seen.step()
    assert step.statuses(prescription) == ["sent"]
    assert step.notified("prescription_sent") == {world.patient} | world.pharmacy.members
    # The patient sees it immediately, linked to their consultation.
    with as_user(conn, world.patient) as c:
        assert c.execute(
            "select id, status from public.healthcare_tickets where origin_ticket_id = %s",
            [consultation],
        ).fetchall() == [(prescription, "sent")]
    assert [
        p["status"]
        for _, p in received(conn, world.patient, f"ticket:{prescription}", "ticket_changed")
    ][-1] == "sent"


def test_gp_to_specialist(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    gp, specialist = world.gp, world.specialist
    consultation = one(
        conn,
        world.patient,
        "insert into public.healthcare_tickets (ticket_type, patient_id, secondary_provider_id)"
        " values ('consultation', %s, %s) returning id",
        [world.patient, gp.provider],
    )
    move(conn, gp.owner, consultation, "accepted")
    seen = Observer(conn)

    # The GP refers the patient to the specialist, from the consultation.
    referral = one(
        conn,
        gp.owner,
        "select id from public.create_ticket_from(%s, 'referral', %s, %s)",
        [consultation, specialist.provider, json.dumps({"title": "Cardiology opinion"})],
    )
    move(conn, gp.owner, referral, "sent")
    step = seen.step()
    assert step.statuses(referral) == ["created", "sent"]
    assert step.notified("referral_sent") == {world.patient} | specialist.members
    assert status_as(conn, specialist.staff, referral) == "sent"

    move(conn, specialist.owner, referral, "accepted")
    step = seen.step()
    assert step.notified("referral_accepted") == {world.patient} | gp.members

    # The specialist opens the consultation the referral asked for.
    visit = one(
        conn,
        specialist.owner,
        "select id from public.create_ticket_from(%s, 'consultation', null, '{}')",
        [referral],
    )
    step = seen.step()
    assert step.statuses(visit) == ["requested"]
    assert "timeline_added" in step.events(f"ticket:{referral}")
    assert step.notified("consultation_requested") == {specialist.staff}
    for status in ("accepted", "in_progress"):
        move(conn, specialist.owner, visit, status)
    seen.step()

    # Completing it completes the referral, as the system; the referring GP is told.
    move(conn, specialist.owner, visit, "completed")
    step = seen.step()
    assert step.statuses(visit) == ["completed"]
    assert step.statuses(referral) == ["completed"]
    assert gp.members <= step.notified("referral_completed")
    assert gp.members <= step.notified("consultation_completed")
    assert status_as(conn, gp.staff, visit) == "completed"
    assert status_as(conn, gp.staff, referral) == "completed"
    assert [
        p["status"] for _, p in received(conn, gp.staff, f"ticket:{referral}", "ticket_changed")
    ][-1] == "completed"


def test_doctor_to_pharmacy(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    doctor, pharmacy = world.doctor, world.pharmacy
    appointment = make_reservation(conn, doctor.owner, world.patient)
    seen = Observer(conn)
    ticket = one(
        conn,
        doctor.owner,
        "select id from public.get_or_create_prescription_ticket(%s, %s)",
        [appointment, pharmacy.provider],
    )
    assert status_as(conn, pharmacy.staff, ticket) is None  # a draft: not the pharmacy's yet
    write_and_send_prescription(conn, doctor.owner, ticket, world)
    step = seen.step()
    assert step.statuses(ticket)[-1] == "sent"
    assert step.notified("prescription_sent") == {world.patient} | pharmacy.members
    # The pharmacy sees the incoming prescription with its items.
    with as_user(conn, pharmacy.staff) as c:
        assert c.execute(
            "select i.medication_name from public.healthcare_tickets t"
            " join public.prescription_items i on i.prescription_id = t.prescription_id"
            " where t.id = %s",
            [ticket],
        ).fetchall() == [("Amoxicillin 500 mg",)]
    assert received(conn, pharmacy.staff, f"ticket:{ticket}", "ticket_changed")

    # The pharmacy fulfils it; the patient sees every status.
    for status in ("received", "processing", "ready", "completed"):
        move(conn, pharmacy.staff, ticket, status)
        step = seen.step()
        assert step.statuses(ticket) == [status]
        assert step.notified(f"prescription_{status}") == {world.patient} | doctor.members
        assert status_as(conn, world.patient, ticket) == status
        assert status in [
            p["status"]
            for _, p in received(conn, world.patient, f"ticket:{ticket}", "ticket_changed")
        ]


def test_doctor_to_diagnostics(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    doctor, centre = world.doctor, world.diagnostics
    make_reservation(conn, doctor.owner, world.patient)  # the care relationship
    seen = Observer(conn)

    # The doctor orders tests from the centre.
    order = one(
        conn,
        doctor.owner,
        "insert into public.healthcare_tickets (ticket_type, patient_id, primary_provider_id,"
        " secondary_provider_id, title) values ('diagnostic', %s, %s, %s, 'Blood work')"
        " returning id",
        [world.patient, doctor.provider, centre.provider],
    )
    with as_user(conn, doctor.owner) as c:
        c.execute(
            "insert into public.diagnostic_order_items (ticket_id, test_code, test_name,"
            " specimen, instructions, price) values"
            " (%s, 'FBC', 'Full blood count', 'blood', 'fasting', 25),"
            " (%s, 'CRP', 'C-reactive protein', 'blood', null, 15)",
            [order, order],
        )
    move(conn, doctor.owner, order, "sent")
    step = seen.step()
    assert step.statuses(order) == ["created", "sent"]
    assert step.notified("diagnostic_sent") == {world.patient} | centre.members
    # The centre sees the order and its tests.
    with as_user(conn, centre.staff) as c:
        assert c.execute(
            "select test_code from public.diagnostic_order_items where ticket_id = %s"
            " order by test_code",
            [order],
        ).fetchall() == [("CRP",), ("FBC",)]

    # The centre schedules it, with its own reservation.
    visit = make_reservation(conn, centre.staff, world.patient)
    with as_user(conn, centre.owner) as c:
        c.execute("select public.schedule_diagnostic_order(%s, null, %s)", [order, visit])
    step = seen.step()
    assert step.statuses(order) == ["scheduled"]
    assert step.notified("diagnostic_scheduled") == {world.patient} | doctor.members
    move(conn, centre.staff, order, "in_progress")
    seen.step()

    # The centre uploads the results; doctor and patient are told and read them.
    name = f"{order}/results/blood-work.pdf"
    upload(conn, centre.staff, name, size=81234)
    register(conn, centre.staff, name, "0" * 64)
    step = seen.step()
    assert step.events(f"ticket:{order}") == ["attachment_added"]
    assert step.notified("diagnostic_result_added") == {world.patient} | doctor.members
    move(conn, centre.staff, order, "results_ready")
    step = seen.step()
    assert step.notified("diagnostic_results_ready") == {world.patient} | doctor.members
    for user in (world.patient, doctor.owner, doctor.staff):
        with as_user(conn, user) as c:
            assert c.execute(
                "select a.kind, a.content_type, a.size_bytes, o.name"
                " from public.ticket_attachments a join storage.objects o"
                " on o.bucket_id = a.bucket_id and o.name = a.object_name"
                " where a.ticket_id = %s",
                [order],
            ).fetchall() == [("result", "application/pdf", 81234, name)]
        assert "attachment_added" in {e for e, _ in received(conn, user, f"ticket:{order}")}
    move(conn, doctor.owner, order, "completed")
    assert seen.step().notified("diagnostic_completed") == {world.patient} | centre.members
