"""Rule 1 of the access issue: the fulfiller of a drafted ticket (prescription, referral,
diagnostic) is a party only once the ticket was sent (healthcare_tickets.sent_at). Every surface
agrees: the ticket's policies, its prescription and items, thread membership, messages, the
timeline, notifications and the Realtime channel ticket:<id>."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.helpers import as_user
from tests.tickets.factories import (
    TICKET_TYPES,
    World,
    attach_file,
    make_world,
    set_status,
    ticket_at,
)

DRAFTED = ("prescription", "referral", "diagnostic")


def thread_of(conn: psycopg.Connection, ticket: uuid.UUID) -> uuid.UUID:
    row = conn.execute(
        "select id from public.chat_threads where ticket_id = %s", [ticket]
    ).fetchone()
    assert row is not None
    return row[0]


def count_as(conn: psycopg.Connection, user: uuid.UUID, sql: str, **params: Any) -> int:
    with as_user(conn, user) as c:
        row = c.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


def surfaces(conn: psycopg.Connection, user: uuid.UUID, ticket: uuid.UUID) -> dict[str, bool]:
    """What ``user`` gets of ``ticket`` on each surface (True: something)."""
    thread = thread_of(conn, ticket)
    p = {"ticket": ticket, "thread": thread}
    seen = {
        "ticket": "select count(*) from public.healthcare_tickets where id = %(ticket)s",
        "thread": "select count(*) from public.chat_threads where id = %(thread)s",
        "members": "select count(*) from public.chat_thread_members where thread_id = %(thread)s",
        "messages": "select count(*) from public.chat_messages where thread_id = %(thread)s",
        "timeline": "select count(*) from public.ticket_timeline where ticket_id = %(ticket)s",
        "notifications": "select count(*) from public.notifications where ticket_id = %(ticket)s",
        "prescription": "select count(*) from public.prescriptions as rx"
        " join public.healthcare_tickets as t on t.prescription_id = rx.id"
        " where t.id = %(ticket)s",
        "items": "select count(*) from public.prescription_items as i"
        " join public.prescriptions as rx on rx.id = i.prescription_id"
        " where rx.id = (select prescription_id from public.healthcare_tickets"
        "   where id = %(ticket)s)",
    }
    out = {name: count_as(conn, user, sql, **p) > 0 for name, sql in seen.items()}
    # Thread membership as the triggers keep it (read as the system).
    member = conn.execute(
        "select count(*) from public.chat_thread_members where thread_id = %s and profile_id = %s",
        [thread, user],
    ).fetchone()
    assert member is not None
    out["membership"] = member[0] > 0
    # Realtime: a real broadcast row on the channel, read with realtime.topic() set to it.
    conn.execute(
        "insert into realtime.messages (topic, extension, event, payload, private)"
        " values (%s, 'broadcast', 'probe', '{}', true)",
        [f"ticket:{ticket}"],
    )
    out["realtime_receive"] = count_as_topic(conn, user, ticket) > 0
    out["realtime_send"] = _can_send(conn, user, ticket)
    return out


def _can_send(conn: psycopg.Connection, user: uuid.UUID, ticket: uuid.UUID) -> bool:
    topic = f"ticket:{ticket}"
    try:
        with as_user(conn, user) as c:
            c.execute("select set_config('realtime.topic', %s, true)", [topic])
            c.execute(
                "insert into realtime.messages (topic, extension, payload, private)"
                " values (%s, 'broadcast', '{}', true)",
                [topic],
            )
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def count_as_topic(conn: psycopg.Connection, user: uuid.UUID, ticket: uuid.UUID) -> int:
    topic = f"ticket:{ticket}"
    with as_user(conn, user) as c:
        c.execute("select set_config('realtime.topic', %s, true)", [topic])
        row = c.execute("select count(*) from realtime.messages").fetchone()
    assert row is not None
    return int(row[0])


def drafted_ticket(conn: psycopg.Connection, world: World, ticket_type: str) -> uuid.UUID:
    """A drafted ticket with its fulfiller named, a message in its thread and, for a
    prescription, a prescription with one item."""
    ticket = ticket_at(conn, world, ticket_type)
    conn.execute(
        "insert into public.chat_messages (thread_id, sender_id, body)"
        " values (%s, %s, 'about your results')",
        [thread_of(conn, ticket), world.doctor.owner],
    )
    conn.execute(
        "insert into public.prescription_items (prescription_id, medication_name, quantity)"
        " select prescription_id, 'Amoxicillin', 21 from public.healthcare_tickets"
        " where id = %s and prescription_id is not null",
        [ticket],
    )
    return ticket


@pytest.mark.parametrize("ticket_type", DRAFTED)
@pytest.mark.parametrize("sent_first", [False, True], ids=["never-sent", "sent-first"])
def test_a_draft_cancelled_before_sending_stays_hidden_from_its_fulfiller(
    conn: psycopg.Connection, ticket_type: str, sent_first: bool
) -> None:
    world = make_world(conn)
    fulfiller = world.fulfiller(ticket_type)
    ticket = drafted_ticket(conn, world, ticket_type)
    if sent_first:
        with as_user(conn, world.doctor.staff) as c:
            c.execute(
                "update public.healthcare_tickets set status = 'sent' where id = %s", [ticket]
            )
    # The requester cancels, as the frontend does.
    with as_user(conn, world.doctor.owner) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'cancelled' where id = %s", [ticket]
        )
    conn.execute(
        "insert into realtime.messages (topic, extension, event, payload, private)"
        " values (%s, 'broadcast', 'status_changed', '{}', true)",
        [f"ticket:{ticket}"],
    )
    has_rx = ticket_type == "prescription"
    for user in (fulfiller.owner, fulfiller.staff):
        got = surfaces(conn, user, ticket)
        expected = dict.fromkeys(got, sent_first)
        if not has_rx:
            expected.update(prescription=False, items=False)
        assert got == expected, user
        # Not one "cancelled" notification reached the fulfiller of a never-sent draft.
        cancelled = conn.execute(
            "select count(*) from public.notifications where recipient_id = %s"
            " and ticket_id = %s and type = %s",
            [user, ticket, f"{ticket_type}_cancelled"],
        ).fetchone()
        assert cancelled == (int(sent_first),)
    # The requester's side and the patient keep everything (notifications: only of others'
    # actions).
    for user in (world.patient, world.doctor.staff):
        got = surfaces(conn, user, ticket)
        without = {"notifications"} | (set() if has_rx else {"prescription", "items"})
        assert {k for k, v in got.items() if not v} <= without


def paths(conn: psycopg.Connection, ticket_type: str) -> list[list[str]]:
    """Every status of the type, each reached directly from the initial status (the system
    skips forward), plus a drafted type's 'sent' then 'cancelled'."""
    initial, drafted = conn.execute(
        "select initial_status, starts_as_draft from public.ticket_types where ticket_type = %s",
        [ticket_type],
    ).fetchone()  # type: ignore[misc]
    statuses = [
        r[0]
        for r in conn.execute(
            "select status from public.ticket_statuses where ticket_type = %s order by rank",
            [ticket_type],
        ).fetchall()
    ]
    out = [[]] + [[s] for s in statuses if s != initial]
    if drafted:
        out.append(["sent", "cancelled"])
    return out


def move(conn: psycopg.Connection, world: World, ticket: uuid.UUID, to_status: str) -> None:
    """Move the ticket as the party whose transition it is (the requester or the patient),
    so that notifications are those of a real change; else as the system."""
    row = conn.execute(
        "select tr.actor from public.ticket_status_transitions as tr"
        " join public.healthcare_tickets as t on t.ticket_type = tr.ticket_type"
        "  and t.status = tr.from_status where t.id = %s and tr.to_status = %s"
        "  and tr.actor in ('primary', 'patient') order by tr.actor limit 1",
        [ticket, to_status],
    ).fetchone()
    if to_status == "scheduled":  # scheduled with its time; results ready with a file
        conn.execute(
            "update public.healthcare_tickets set scheduled_time = now() + interval '1 day'"
            " where id = %s and scheduled_time is null",
            [ticket],
        )
    if to_status == "results_ready":
        attach_file(conn, ticket, "results", world.diagnostics.staff)
    if row is None:
        set_status(conn, ticket, to_status)
        return
    user = world.doctor.owner if row[0] == "primary" else world.patient
    with as_user(conn, user) as c:
        c.execute(
            "update public.healthcare_tickets set status = %s where id = %s", [to_status, ticket]
        )


@pytest.mark.parametrize("ticket_type", TICKET_TYPES)
def test_every_surface_agrees_on_the_fulfiller_for_every_status(
    conn: psycopg.Connection, ticket_type: str
) -> None:
    """For every status (and a draft cancelled after sending), the fulfiller's staff get the
    ticket on every surface exactly when the ticket says they are a party (sent_at)."""
    world = make_world(conn)
    fulfiller = world.fulfiller(ticket_type)
    extra: dict[str, Any] = {}
    if ticket_type == "counseling":
        extra = {
            "scheduled_time": datetime.now(UTC) + timedelta(days=1),
            "meeting_link": "https://meet.example/c",
        }
    mismatches = {}
    for path in paths(conn, ticket_type):
        ticket = ticket_at(conn, world, ticket_type, **extra)
        for step in path:
            move(conn, world, ticket, step)
        # The patient writes: every member of the thread but the patient is notified.
        with as_user(conn, world.patient) as c:
            c.execute(
                "insert into public.chat_messages (thread_id, body) values (%s, 'hello')",
                [thread_of(conn, ticket)],
            )
        row = conn.execute(
            "select sent_at is not null from public.healthcare_tickets where id = %s", [ticket]
        ).fetchone()
        assert row is not None
        sent = row[0]
        model = ticket_type not in DRAFTED or any(s not in ("created", "cancelled") for s in path)
        got = surfaces(conn, fulfiller.staff, ticket)
        got.pop("prescription")
        got.pop("items")
        expected = dict.fromkeys(got, model)
        expected["sent_at"] = model
        got["sent_at"] = sent
        if got != expected:
            mismatches[">".join(path) or "initial"] = {
                k: got[k] for k in got if got[k] != expected[k]
            }
    assert mismatches == {}
