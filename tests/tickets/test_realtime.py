"""Realtime Authorization on realtime.messages for the private ticket channels: receiving is
reading real broadcast rows with realtime.topic() set to the channel, as Realtime does."""

from __future__ import annotations

import uuid

import psycopg

from tests.helpers import as_user
from tests.tickets.factories import make_world, raises_sqlstate, ticket_at


def broadcast(conn: psycopg.Connection, topic: str, event: str) -> None:
    """A broadcast row as the system writes it (realtime.send)."""
    conn.execute(
        "insert into realtime.messages (topic, extension, event, payload, private)"
        " values (%s, 'broadcast', %s, '{}', true)",
        [topic, event],
    )


def received(conn: psycopg.Connection, user: uuid.UUID, channel: str) -> list[tuple[str, str]]:
    """The rows ``user`` receives on ``channel``: all of realtime.messages they may read."""
    with as_user(conn, user) as c:
        c.execute("select set_config('realtime.topic', %s, true)", [channel])
        # Leaving out what the database broadcasts itself (tests/careflows test those).
        return c.execute(
            "select topic, event from realtime.messages"
            " where event <> all(array['ticket_changed', 'message_created', 'attachment_added',"
            " 'timeline_added', 'notification_created']) order by event"
        ).fetchall()


def test_a_party_receives_the_broadcast_row_and_a_stranger_none(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", "sent")
    topic = f"ticket:{ticket}"
    broadcast(conn, topic, "status_changed")
    assert received(conn, world.patient, topic) == [(topic, "status_changed")]
    assert received(conn, world.pharmacy.staff, topic) == [(topic, "status_changed")]
    assert received(conn, world.other_patient, topic) == []
    assert received(conn, world.other_pharmacy.staff, topic) == []


def test_a_party_of_one_ticket_reads_no_row_of_another_channel(conn: psycopg.Connection) -> None:
    """The policies bind the row: its topic must be the channel's, not any topic at all."""
    world = make_world(conn)
    mine = ticket_at(conn, world, "consultation", "accepted")
    theirs = ticket_at(conn, world, "consultation", "accepted", patient_id=world.other_patient)
    broadcast(conn, f"ticket:{mine}", "mine")
    broadcast(conn, f"ticket:{theirs}", "theirs")
    broadcast(conn, "user:someone-else", "private")
    assert received(conn, world.patient, f"ticket:{mine}") == [(f"ticket:{mine}", "mine")]
    # Sending: only onto the channel joined.
    with as_user(conn, world.patient) as c, raises_sqlstate("42501"):
        c.execute("select set_config('realtime.topic', %s, true)", [f"ticket:{mine}"])
        c.execute(
            "insert into realtime.messages (topic, extension, payload, private)"
            " values (%s, 'broadcast', '{}', true)",
            [f"ticket:{theirs}"],
        )
    with as_user(conn, world.patient) as c:
        c.execute("select set_config('realtime.topic', %s, true)", [f"ticket:{mine}"])
        c.execute(
            "insert into realtime.messages (topic, extension, payload, private)"
            " values (%s, 'broadcast', '{}', true)",
            [f"ticket:{mine}"],
        )


def test_the_fulfiller_of_a_draft_cancelled_before_sending_never_joins_its_channel(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription")
    with as_user(conn, world.doctor.owner) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'cancelled' where id = %s", [ticket]
        )
    topic = f"ticket:{ticket}"
    broadcast(conn, topic, "status_changed")
    assert received(conn, world.doctor.staff, topic) == [(topic, "status_changed")]
    assert received(conn, world.pharmacy.staff, topic) == []
    with as_user(conn, world.pharmacy.staff) as c, raises_sqlstate("42501"):
        c.execute("select set_config('realtime.topic', %s, true)", [topic])
        c.execute(
            "insert into realtime.messages (topic, extension, payload, private)"
            " values (%s, 'broadcast', '{}', true)",
            [topic],
        )
