"""chat_unread: a text to a ticket thread's patient who has not read a new message for the
rule's delay; cancelled when they read the thread first; one per thread while one waits; never
for system messages, the sender or backfill."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg

from app.jobs.messaging import Sender
from tests.helpers import as_user
from tests.messaging.conftest import consenting_patient, deliveries, run_sender
from tests.messaging.twilio_double import TwilioDouble
from tests.tickets.factories import World, make_world, ticket_at

PHONE = "+15551230077"


def consultation(conn: psycopg.Connection) -> tuple[World, uuid.UUID, uuid.UUID]:
    """A consultation accepted by the GP, its patient consenting to SMS; (world, ticket, thread)."""
    world = make_world(conn)
    consenting_patient(conn, world.patient, PHONE)
    ticket = ticket_at(conn, world, "consultation")
    with as_user(conn, world.gp.owner) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'accepted' where id = %s", [ticket]
        )
    row = conn.execute("select id from public.chat_threads where ticket_id = %s", [ticket])
    thread = row.fetchone()
    assert thread is not None
    # Only the chat_unread rows matter here.
    conn.execute(
        "update public.notification_deliveries set status = 'cancelled', suppressed_reason ="
        " 'test' where event <> 'chat_unread' and status in ('queued', 'scheduled')"
    )
    return world, ticket, thread[0]


def post(conn: psycopg.Connection, user: uuid.UUID, thread: uuid.UUID, body: str) -> None:
    with as_user(conn, user) as c:
        c.execute(
            "insert into public.chat_messages (thread_id, sender_id, body) values (%s, %s, %s)",
            [thread, user, body],
        )


def unread(conn: psycopg.Connection, ticket: uuid.UUID) -> list[dict]:
    return deliveries(conn, ticket_id=ticket, event="chat_unread")


def time_passes(conn: psycopg.Connection, ticket: uuid.UUID) -> None:
    """The rule's delay has passed: the waiting delivery is due."""
    conn.execute(
        "update public.notification_deliveries set not_before = now()"
        " where ticket_id = %s and event = 'chat_unread' and status = 'scheduled'",
        [ticket],
    )


def test_an_unread_message_texts_the_patient_after_the_delay_without_its_text(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender
) -> None:
    world, ticket, thread = consultation(conn)
    post(conn, world.gp.owner, thread, "Your blood pressure results look worrying")
    [row] = unread(conn, ticket)
    assert row["status"] == "scheduled"
    assert row["recipient_id"] == world.patient
    assert row["channel"] == "sms"
    assert row["address"] == PHONE
    delay = row["not_before"] - row["created_at"]
    assert delay >= timedelta(minutes=30)
    # Not due yet: nothing is sent.
    run_sender(sender, conn)
    assert double.sent_to(PHONE) == []
    time_passes(conn, ticket)
    run_sender(sender, conn)
    [message] = double.sent_to(PHONE)
    assert "new message about your care request" in message["body"]
    assert f"https://app.carehub.example/tickets/{ticket}" in message["body"]
    assert "blood pressure" not in message["body"]
    [row] = unread(conn, ticket)
    assert row["status"] == "sent"


def test_reading_the_thread_before_the_delay_cancels_it(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender
) -> None:
    world, ticket, thread = consultation(conn)
    post(conn, world.gp.owner, thread, "Please book a follow-up")
    with as_user(conn, world.patient) as c:
        c.execute(
            "update public.chat_thread_members set last_read_at = now()"
            " where thread_id = %s and profile_id = %s",
            [thread, world.patient],
        )
    time_passes(conn, ticket)
    run_sender(sender, conn)
    [row] = unread(conn, ticket)
    assert row["status"] == "cancelled"
    assert row["suppressed_reason"] == "thread_read"
    assert double.sent_to(PHONE) == []


def test_two_messages_make_one_delivery(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender
) -> None:
    world, ticket, thread = consultation(conn)
    post(conn, world.gp.owner, thread, "First")
    post(conn, world.gp.staff, thread, "Second")
    assert len(unread(conn, ticket)) == 1
    time_passes(conn, ticket)
    run_sender(sender, conn)
    assert len(double.sent_to(PHONE)) == 1
    # Still unread: a third message does not text again for the same unread messages.
    post(conn, world.gp.owner, thread, "Third")
    assert len(unread(conn, ticket)) == 1


def test_system_messages_and_the_senders_own_never(conn: psycopg.Connection) -> None:
    world, ticket, thread = consultation(conn)
    conn.execute(
        "insert into public.chat_messages (thread_id, sender_id, body, kind)"
        " values (%s, null, 'Status: accepted', 'system')",
        [thread],
    )
    post(conn, world.patient, thread, "Thanks, doctor")
    assert unread(conn, ticket) == []
    # Nor to the GP (no provider rule).
    assert deliveries(conn, event="chat_unread") == []


def test_backfill_never(conn: psycopg.Connection) -> None:
    world, ticket, thread = consultation(conn)
    with conn.transaction():
        conn.execute("set local app.source = 'backfill'")
        conn.execute(
            "insert into public.chat_messages (thread_id, sender_id, body)"
            " values (%s, %s, 'Imported from the old chat')",
            [thread, world.gp.owner],
        )
    assert unread(conn, ticket) == []


def test_a_chat_unread_rule_goes_to_the_patient_only(conn: psycopg.Connection) -> None:
    from tests.tickets.factories import raises_sqlstate

    with raises_sqlstate("22023", "unread-chat"):
        conn.execute(
            "insert into public.notification_rules (name, event, audience, channels,"
            " sms_template) values ('x', 'chat_unread', 'primary', '{sms}', 'New message')"
        )
