"""Realtime Broadcast from the database: the emulated realtime.send / broadcast_changes, the
events the triggers send on 'ticket:<id>' and 'user:<profile id>' (small payloads, no PHI),
nothing for a backfill, and who receives them, read as Realtime authorises a join."""

from __future__ import annotations

import json
import uuid

import psycopg

from tests.careflows.helpers import broadcasts, received, register, upload
from tests.helpers import as_anon, as_user
from tests.tickets.factories import make_world, set_status, ticket_at

# What a payload may carry: ids, types, statuses and times.
ALLOWED_KEYS = {"ticket_id", "id", "thread_id", "type", "status", "operation", "at"}


def thread_of(conn: psycopg.Connection, ticket: uuid.UUID) -> uuid.UUID:
    row = conn.execute("select id from public.chat_threads where ticket_id = %s", [ticket])
    found = row.fetchone()
    assert found is not None
    return found[0]


def test_realtime_send_and_broadcast_changes_write_broadcast_rows_as_supabase_does(
    conn: psycopg.Connection,
) -> None:
    conn.execute("select realtime.send('{\"a\": 1}', 'hello', 'room:1')")
    conn.execute("select realtime.send('{}', 'open', 'room:2', false)")
    rows = conn.execute(
        "select topic, event, extension, payload, private from realtime.messages order by topic"
    ).fetchall()
    assert rows == [
        ("room:1", "hello", "broadcast", {"a": 1}, True),
        ("room:2", "open", "broadcast", {}, False),
    ]
    signature = conn.execute(
        "select pg_get_function_identity_arguments('realtime.broadcast_changes'::regproc)"
    ).fetchone()
    assert signature == (
        "topic_name text, event_name text, operation text, table_name text, table_schema text,"
        " new record, old record, level text",
    )
    conn.execute(
        "select realtime.broadcast_changes('room:3', 'INSERT', 'INSERT', 't', 'public',"
        " row(1, 'x'), null::record)"
    )
    payload = conn.execute(
        "select payload from realtime.messages where topic = 'room:3'"
    ).fetchone()
    assert payload is not None
    assert payload[0]["operation"] == "INSERT"
    assert payload[0]["record"] == {"f1": 1, "f2": "x"}


def test_every_change_of_a_ticket_is_broadcast_on_its_topic_without_phi(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket = ticket_at(
        conn, world, "consultation", title="Chest pain after flu", description="since Monday"
    )
    with as_user(conn, world.gp.owner) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'accepted' where id = %s", [ticket]
        )
    with as_user(conn, world.patient) as c:
        c.execute(
            "insert into public.chat_messages (thread_id, sender_id, body)"
            " values (%s, %s, 'It hurts when I breathe')",
            [thread_of(conn, ticket), world.patient],
        )
    upload(conn, world.patient, f"{ticket}/images/chest.png", mimetype="image/png")
    register(conn, world.patient, f"{ticket}/images/chest.png")
    sent = broadcasts(conn, f"ticket:{ticket}")
    events = [event for event, _ in sent]
    assert events.count("ticket_changed") == 2  # created, accepted
    assert events.count("timeline_added") == 2
    assert events.count("message_created") == 1
    assert events.count("attachment_added") == 1
    for event, payload in sent:
        assert payload["ticket_id"] == str(ticket), event
        assert set(payload) <= ALLOWED_KEYS, (event, payload)
        text = json.dumps(payload)
        for phi in ("Chest", "Monday", "breathe", "chest.png", "Patient"):
            assert phi not in text, (event, payload)
    statuses = [p["status"] for e, p in sent if e == "ticket_changed"]
    assert sorted(statuses) == ["accepted", "requested"]


def test_a_new_notification_is_broadcast_on_the_recipients_user_topic(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "consultation", "requested")
    with as_user(conn, world.gp.owner) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'accepted' where id = %s", [ticket]
        )
    note = conn.execute(
        "select id from public.notifications where recipient_id = %s"
        " and type = 'consultation_accepted'",
        [world.patient],
    ).fetchone()
    assert note is not None
    got = received(conn, world.patient, f"user:{world.patient}", "notification_created")
    assert [p for _, p in got if p["type"] == "consultation_accepted"] == [
        {
            "id": str(note[0]),
            "ticket_id": str(ticket),
            "type": "consultation_accepted",
            "at": got[-1][1]["at"],
        }
    ]
    # Only that user receives their topic: not the ticket's other parties, nor anyone else.
    for user in (world.gp.owner, world.admin, world.other_patient):
        assert received(conn, user, f"user:{world.patient}") == []
    with as_anon(conn) as c:
        c.execute("select set_config('realtime.topic', %s, true)", [f"user:{world.patient}"])
        assert c.execute("select count(*) from realtime.messages").fetchone() == (0,)
    # Nobody sends onto another user's topic, not even onto their own.
    for user in (world.gp.owner, world.patient):
        with as_user(conn, user) as c:
            c.execute("select set_config('realtime.topic', %s, true)", [f"user:{world.patient}"])
            try:
                c.execute(
                    "insert into realtime.messages (topic, extension, payload, private)"
                    " values (%s, 'broadcast', '{}', true)",
                    [f"user:{world.patient}"],
                )
            except psycopg.errors.InsufficientPrivilege:
                pass
            else:
                raise AssertionError(f"{user} sent onto user:{world.patient}")


def test_ticket_topics_admit_the_parties_and_no_stranger(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", "sent")
    topic = f"ticket:{ticket}"
    for user in (
        world.patient, world.doctor.owner, world.doctor.staff, world.pharmacy.owner,
        world.pharmacy.staff, world.admin,
    ):  # fmt: skip
        assert "ticket_changed" in {e for e, _ in received(conn, user, topic)}, user
    for user in (world.other_patient, world.other_pharmacy.staff, world.gp.owner):
        assert received(conn, user, topic) == [], user
    # A party of this ticket reading with another channel's topic set gets nothing of it.
    other = ticket_at(conn, world, "consultation", "accepted", patient_id=world.other_patient)
    assert all(
        p["ticket_id"] == str(other) for _, p in received(conn, world.gp.owner, f"ticket:{other}")
    )
    assert received(conn, world.patient, f"ticket:{other}") == []


def test_the_pharmacy_of_a_draft_gets_no_broadcast_of_it(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription")
    with as_user(conn, world.doctor.owner) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'cancelled' where id = %s", [ticket]
        )
    assert received(conn, world.pharmacy.staff, f"ticket:{ticket}") == []
    assert received(conn, world.pharmacy.staff, f"user:{world.pharmacy.staff}") == []
    doctor_got = received(conn, world.doctor.staff, f"ticket:{ticket}")
    assert "ticket_changed" in {e for e, _ in doctor_got}


def test_a_backfill_broadcasts_nothing(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    before = conn.execute("select count(*) from realtime.messages").fetchone()
    with conn.transaction():
        conn.execute("set local app.source = 'backfill'")
        ticket = ticket_at(conn, world, "consultation", "accepted")
        set_status(conn, ticket, "completed")
        conn.execute(
            "insert into public.chat_messages (thread_id, sender_id, body) values (%s, %s, 'old')",
            [thread_of(conn, ticket), world.patient],
        )
    assert conn.execute("select count(*) from realtime.messages").fetchone() == before
    set_status(conn, ticket_at(conn, world, "consultation"), "accepted")
    after = conn.execute("select count(*) from realtime.messages").fetchone()
    assert after is not None
    assert before is not None
    assert after[0] > before[0]
