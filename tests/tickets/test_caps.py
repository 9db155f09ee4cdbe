"""Caps on opening tickets (access issue, rule 10): one open crisis counselling ticket per
patient, a few open patient-opened tickets per type (private.limits), also under concurrency."""

from __future__ import annotations

import uuid

import psycopg

from tests.helpers import TestDatabase, as_user, run_together
from tests.tickets.factories import make_world, raises_sqlstate, set_status, ticket_at

CRISIS = (
    "insert into public.healthcare_tickets (ticket_type, patient_id, urgency, category)"
    " values ('counseling', %s, %s, 'anxiety') returning id"
)


def open_counseling(
    conn: psycopg.Connection, patient: uuid.UUID, urgency: str = "crisis"
) -> uuid.UUID:
    with as_user(conn, patient) as c:
        row = c.execute(CRISIS, [patient, urgency]).fetchone()
    assert row is not None
    return row[0]


def test_a_second_open_crisis_ticket_is_refused_naming_the_open_one(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    first = open_counseling(conn, world.patient)
    with raises_sqlstate("CH009", str(first)):
        open_counseling(conn, world.patient)
    # Raising a calm ticket to crisis is the same second crisis.
    calm = open_counseling(conn, world.patient, "high")
    with as_user(conn, world.patient) as c, raises_sqlstate("CH009", str(first)):
        c.execute("update public.healthcare_tickets set urgency = 'crisis' where id = %s", [calm])
    # Another patient is not affected; once the first is closed, a new crisis may be opened.
    open_counseling(conn, world.other_patient)
    set_status(conn, first, "closed")
    open_counseling(conn, world.patient)


def test_patients_have_a_few_open_tickets_per_type(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    cap = conn.execute("select private.limit_value('open_patient_tickets_per_type')").fetchone()
    assert cap == (3,)
    opened = [open_counseling(conn, world.patient, "normal") for _ in range(3)]
    with raises_sqlstate("CH009", "3 open counseling tickets"):
        open_counseling(conn, world.patient, "normal")
    # Tickets a provider opened for the patient do not count, nor ended ones.
    ticket_at(conn, world, "referral", "sent")
    set_status(conn, opened[0], "closed")
    open_counseling(conn, world.patient, "normal")
    # The cap is a setting.
    conn.execute("update private.limits set value = 5 where name = 'open_patient_tickets_per_type'")
    open_counseling(conn, world.patient, "normal")


def test_concurrent_crisis_tickets_of_one_patient_open_only_one(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_world(conn)
    connections = [database.connect() for _ in range(6)]

    def attempt(index: int) -> uuid.UUID:
        return open_counseling(connections[index], world.patient)

    results = run_together(len(connections), attempt)
    opened = [r for r in results if isinstance(r, uuid.UUID)]
    refused = [r for r in results if isinstance(r, psycopg.Error) and r.sqlstate == "CH009"]
    assert (len(opened), len(refused)) == (1, 5), results
