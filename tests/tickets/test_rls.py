"""Row level security of the ticket tables: for every ticket type and the statuses where
visibility changes, each role's select, insert, update and delete on every table, with the
outcome asserted: rows, zero rows (silently filtered) or the error."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.helpers import as_anon, as_user, create_provider, create_user
from tests.tickets.factories import (
    FULFILLER_KIND,
    World,
    make_world,
    raises_sqlstate,
    set_status,
    ticket_at,
)

ROLES = ("patient", "primary", "secondary", "unrelated", "claimer", "admin", "anon")
CLAIMABLE = {"consultation": "requested", "referral": "sent", "counseling": "open"}
REQUESTED_BY_PROVIDER = ("prescription", "referral", "diagnostic")
TERMINAL = {
    "prescription": ("delivered", "completed", "cancelled", "failed"),
    "consultation": ("completed", "declined", "cancelled"),
    "referral": ("completed", "declined", "cancelled"),
    "diagnostic": ("completed", "cancelled", "failed"),
    "counseling": ("closed",),
}

# (ticket type, status, open for claiming); "a>b" reaches b through a (the system moves it).
SCENARIOS = [
    ("prescription", "created", False),
    ("prescription", "sent", False),
    ("prescription", "delivered", False),
    # Drafts cancelled before sending stay hidden from their fulfiller; after sending, not.
    ("prescription", "cancelled", False),
    ("prescription", "sent>cancelled", False),
    ("referral", "cancelled", False),
    ("referral", "sent>cancelled", False),
    ("diagnostic", "cancelled", False),
    ("diagnostic", "sent>cancelled", False),
    ("consultation", "requested", True),
    ("consultation", "requested", False),
    ("consultation", "accepted", False),
    ("referral", "created", False),
    ("referral", "sent", True),
    ("referral", "accepted", False),
    ("diagnostic", "created", False),
    ("diagnostic", "sent", False),
    ("counseling", "open", True),
    ("counseling", "scheduled", False),
]

Outcome = tuple[str, Any]  # ("rows", n) / ("some", bool) / ("error", sqlstate)


@dataclass
class Scenario:
    ticket_type: str
    status: str
    is_open: bool
    world: World
    users: dict[str, uuid.UUID]
    ticket: uuid.UUID
    thread: uuid.UUID
    prescription: uuid.UUID | None

    @property
    def sent(self) -> bool:
        """Whether the ticket was sent: its fulfiller became a party (sent_at)."""
        return self.ticket_type not in REQUESTED_BY_PROVIDER or any(
            step not in ("created", "cancelled") for step in self.status.split(">")
        )

    def is_party(self, role: str) -> bool:
        if role in ("patient", "admin"):
            return True
        if role == "primary":
            return self.ticket_type in REQUESTED_BY_PROVIDER
        if role == "secondary":
            # The fulfiller of a drafted type is a party only once the ticket was sent.
            return not self.is_open and self.sent
        return False

    @property
    def requester(self) -> str:
        """Who owns the ticket's request fields (ticket_field_writers)."""
        return "primary" if self.ticket_type in REQUESTED_BY_PROVIDER else "patient"

    @property
    def is_terminal(self) -> bool:
        return self.status.split(">")[-1] in TERMINAL[self.ticket_type]

    def is_member(self, role: str) -> bool:
        return role != "admin" and self.is_party(role)

    def may_claim(self, role: str) -> bool:
        kinds = {
            "primary": "doctor",
            "secondary": FULFILLER_KIND[self.ticket_type],
            "unrelated": "pharmacy",
            "claimer": FULFILLER_KIND[self.ticket_type],
        }
        return self.is_open and kinds.get(role) == FULFILLER_KIND[self.ticket_type]


def scenario_id(s: tuple[str, str, bool]) -> str:
    return f"{s[0]}-{s[1].replace('>', '-then-')}" + ("-open" if s[2] else "")


def build(conn: psycopg.Connection, ticket_type: str, status: str, is_open: bool) -> Scenario:
    world = make_world(conn)
    claimer = create_user(conn, "doctor" if ticket_type == "consultation" else "patient")
    create_provider(conn, FULFILLER_KIND[ticket_type], staff=[claimer])
    users = {
        "patient": world.patient,
        "primary": world.doctor.owner,
        "secondary": world.fulfiller(ticket_type).staff,
        "unrelated": world.other_pharmacy.staff,
        "claimer": claimer,
        "admin": world.admin,
    }
    # Items are added while the prescription is a draft; then the ticket moves on.
    extra = (
        {"scheduled_time": datetime.now(UTC) + timedelta(days=1), "meeting_link": "https://m.x/1"}
        if ticket_type == "counseling"
        else {}
    )
    ticket = ticket_at(conn, world, ticket_type, open_for_claim=is_open, **extra)
    row = conn.execute(
        "select th.id, t.prescription_id from public.chat_threads as th"
        " join public.healthcare_tickets as t on t.id = th.ticket_id where t.id = %s",
        [ticket],
    ).fetchone()
    assert row is not None
    thread, prescription = row
    conn.execute(
        "insert into public.chat_messages (thread_id, sender_id, body) values (%s, %s, 'hello')",
        [thread, world.patient],
    )
    if prescription:
        conn.execute(
            "insert into public.prescription_items (prescription_id, medication_name, quantity)"
            " values (%s, 'Amoxicillin', 21)",
            [prescription],
        )
    for step in status.split(">"):
        set_status(conn, ticket, step)
    for user in users.values():
        conn.execute(
            "insert into public.notifications (recipient_id, ticket_id, type, title)"
            " values (%s, %s, 'test', 'For you')",
            [user, ticket],
        )
    return Scenario(ticket_type, status, is_open, world, users, ticket, thread, prescription)


def attempt(
    conn: psycopg.Connection,
    role: str,
    user: uuid.UUID | None,
    sql: str,
    params: dict[str, Any],
    *,
    count_rows: bool = False,
) -> Outcome:
    request = as_anon(conn) if role == "anon" else as_user(conn, user or uuid.uuid4())
    try:
        with request as c:
            cur = c.execute(sql, params)
            n = len(cur.fetchall()) if cur.description else cur.rowcount
            if count_rows:
                return ("some", n > 0)
            return ("rows", n)
    except psycopg.Error as exc:
        return ("error", exc.sqlstate)


DENIED: Outcome = ("error", "42501")


def rows(n: int) -> Outcome:
    return ("rows", n)


def some(b: bool) -> Outcome:
    return ("some", b)


# Each operation: (name, sql, count_rows, expected(scenario, role)).
Operation = tuple[str, str, bool, Callable[[Scenario, str], Outcome]]

OPERATIONS: list[Operation] = [
    (
        "tickets.select",
        "select id from public.healthcare_tickets where id = %(ticket)s",
        False,
        lambda s, r: rows(int(s.is_party(r) or s.may_claim(r))),
    ),
    (
        "tickets.update",
        # A fresh value each time, so no attempt is a no-op that a later one repeats.
        "update public.healthcare_tickets set description = gen_random_uuid()::text"
        " where id = %(ticket)s",
        False,
        lambda s, r: (
            rows(0)
            if not s.is_party(r)
            else rows(1)
            if r == s.requester and not s.is_terminal
            else ("error", "CH007")
        ),
    ),
    (
        "tickets.delete",
        "delete from public.healthcare_tickets where id = %(ticket)s",
        False,
        lambda s, r: DENIED,
    ),
    (
        "tickets.insert",
        "insert into public.healthcare_tickets (ticket_type, patient_id, primary_provider_id,"
        " category) values (%(type)s, %(patient)s, %(requester)s, 'anxiety') returning id",
        False,
        lambda s, r: (
            # A prescription ticket opened through the API hangs off an appointment.
            ("error", "CH008")
            if r == "primary" and s.ticket_type == "prescription"
            else rows(1)
            if r == s.requester
            else DENIED
        ),
    ),
    (
        "timeline.select",
        "select id from public.ticket_timeline where ticket_id = %(ticket)s",
        True,
        lambda s, r: some(s.is_party(r)),
    ),
    (
        "timeline.insert",
        "insert into public.ticket_timeline (ticket_id, event_type, actor_kind, source)"
        " values (%(ticket)s, 'forged', 'system', 'app')",
        False,
        lambda s, r: DENIED,
    ),
    (
        "timeline.update",
        "update public.ticket_timeline set event_type = 'forged' where ticket_id = %(ticket)s",
        False,
        lambda s, r: DENIED,
    ),
    (
        "timeline.delete",
        "delete from public.ticket_timeline where ticket_id = %(ticket)s",
        False,
        lambda s, r: DENIED,
    ),
    (
        "threads.select",
        "select id from public.chat_threads where ticket_id = %(ticket)s",
        False,
        lambda s, r: rows(int(s.is_party(r))),
    ),
    (
        "threads.update",
        "update public.chat_threads set title = 'renamed' where id = %(thread)s",
        False,
        lambda s, r: rows(int(s.is_member(r))),
    ),
    (
        "threads.insert",
        "insert into public.chat_threads (ticket_id, title) values (%(ticket)s, 'second')",
        False,
        lambda s, r: DENIED,
    ),
    (
        "threads.delete",
        "delete from public.chat_threads where id = %(thread)s",
        False,
        lambda s, r: DENIED,
    ),
    (
        "members.select",
        "select profile_id from public.chat_thread_members where thread_id = %(thread)s",
        True,
        lambda s, r: some(s.is_party(r)),
    ),
    (
        "members.update",
        "update public.chat_thread_members set last_read_at = now() where thread_id = %(thread)s",
        False,
        lambda s, r: rows(1) if s.is_member(r) else rows(0),
    ),
    (
        "members.insert",
        "insert into public.chat_thread_members (thread_id, profile_id, role)"
        " values (%(thread)s, %(me)s, 'member')",
        False,
        lambda s, r: DENIED,
    ),
    (
        "members.delete",
        "delete from public.chat_thread_members where thread_id = %(thread)s",
        False,
        lambda s, r: rows(0),
    ),
    (
        "messages.select",
        "select id from public.chat_messages where thread_id = %(thread)s",
        True,
        lambda s, r: some(s.is_party(r)),
    ),
    (
        "messages.insert",
        "insert into public.chat_messages (thread_id, sender_id, body)"
        " values (%(thread)s, %(me)s, 'hi')",
        False,
        lambda s, r: rows(1) if s.is_member(r) else DENIED,
    ),
    (
        "messages.update",
        "update public.chat_messages set body = 'edited' where thread_id = %(thread)s",
        False,
        lambda s, r: DENIED,
    ),
    (
        "messages.delete",
        "delete from public.chat_messages where thread_id = %(thread)s",
        False,
        lambda s, r: DENIED,
    ),
    (
        "notifications.select",
        "select recipient_id from public.notifications where type = 'test'",
        False,
        lambda s, r: rows(1),
    ),
    (
        "notifications.mark_read",
        "update public.notifications set read_at = now() where type = 'test'",
        False,
        lambda s, r: rows(1),
    ),
    (
        "notifications.update_title",
        "update public.notifications set title = 'changed' where type = 'test'",
        False,
        lambda s, r: DENIED,
    ),
    (
        "notifications.insert",
        "insert into public.notifications (recipient_id, type, title)"
        " values (%(me)s, 'forged', 'x')",
        False,
        lambda s, r: DENIED,
    ),
    (
        "notifications.delete",
        "delete from public.notifications where type = 'test'",
        False,
        lambda s, r: DENIED,
    ),
]


def prescription_reader(s: Scenario, r: str) -> bool:
    return r in ("patient", "primary", "admin") or (r == "secondary" and s.sent)


PRESCRIPTION_OPERATIONS: list[Operation] = [
    (
        "prescriptions.select",
        "select id from public.prescriptions where id = %(rx)s",
        False,
        lambda s, r: rows(int(prescription_reader(s, r))),
    ),
    (
        "prescriptions.update_rx_number",
        "update public.prescriptions set rx_number = 'RX-1' where id = %(rx)s",
        False,
        lambda s, r: rows(int(r == "primary")),
    ),
    (
        "prescriptions.update_medications",
        "update public.prescriptions set medications = '[]' where id = %(rx)s",
        False,
        lambda s, r: ("error", "CH007") if r == "primary" and s.sent else rows(int(r == "primary")),
    ),
    (
        "prescriptions.delete",
        "delete from public.prescriptions where id = %(rx)s",
        False,
        # Linked to its ticket: the foreign key keeps it.
        lambda s, r: ("error", "23503") if r == "primary" and not s.sent else rows(0),
    ),
    (
        "prescriptions.insert",
        "insert into public.prescriptions (doctor_id, pharmacy_id, patient_id)"
        " values (%(me)s, %(pharmacy)s, %(patient)s) returning id",
        False,
        lambda s, r: rows(1) if r == "primary" else DENIED,
    ),
    (
        "items.select",
        "select id from public.prescription_items where prescription_id = %(rx)s",
        False,
        lambda s, r: rows(int(prescription_reader(s, r))),
    ),
    (
        "items.insert",
        "insert into public.prescription_items (prescription_id, medication_name)"
        " values (%(rx)s, 'Ibuprofen')",
        False,
        lambda s, r: (("error", "CH007") if s.sent else rows(1)) if r == "primary" else DENIED,
    ),
    (
        "items.delete",
        "delete from public.prescription_items where prescription_id = %(rx)s",
        False,
        lambda s, r: (("error", "CH007") if s.sent else rows(2)) if r == "primary" else rows(0),
    ),
]


@pytest.mark.parametrize("case", SCENARIOS, ids=scenario_id)
def test_role_matrix(conn: psycopg.Connection, case: tuple[str, str, bool]) -> None:
    s = build(conn, *case)
    operations = OPERATIONS + (PRESCRIPTION_OPERATIONS if s.prescription else [])
    expected: dict[tuple[str, str], Outcome] = {}
    actual: dict[tuple[str, str], Outcome] = {}
    for name, sql, count_rows, expect in operations:
        for role in ROLES:
            user = s.users.get(role)
            params = {
                "ticket": s.ticket,
                "thread": s.thread,
                "rx": s.prescription,
                "me": user,
                "type": s.ticket_type,
                "patient": s.world.patient,
                "pharmacy": s.world.pharmacy.provider,
                "requester": s.world.doctor.provider
                if s.ticket_type in REQUESTED_BY_PROVIDER
                else None,
            }
            expected[(name, role)] = DENIED if role == "anon" else expect(s, role)
            actual[(name, role)] = attempt(conn, role, user, sql, params, count_rows=count_rows)
    mismatches = {k: (expected[k], actual[k]) for k in expected if expected[k] != actual[k]}
    assert mismatches == {}, "(expected, actual) per (operation, role)"


def test_state_machine_tables_are_read_only_and_hidden_from_anon(
    conn: psycopg.Connection,
) -> None:
    user = create_user(conn, "patient")
    for table in ("ticket_types", "ticket_statuses", "ticket_status_transitions"):
        with as_user(conn, user) as c:
            count = c.execute(f"select count(*) from public.{table}").fetchone()
            assert count is not None
            assert count[0] > 0
        for statement in (
            f"delete from public.{table}",
            f"update public.{table} set ticket_type = ticket_type",
            f"insert into public.{table} (ticket_type) values ('x')",
        ):
            with as_user(conn, user) as c, raises_sqlstate("42501"):
                c.execute(statement)
        with as_anon(conn) as c, raises_sqlstate("42501"):
            c.execute(f"select 1 from public.{table}")


def test_realtime_ticket_channel_admits_only_parties(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", "created")
    opened = ticket_at(conn, world, "counseling", open_for_claim=True)

    # A real broadcast row on each channel: receiving is reading it.
    for t in (ticket, opened):
        conn.execute(
            "insert into realtime.messages (topic, extension, payload, private)"
            " values (%s, 'broadcast', '{}', true)",
            [f"ticket:{t}"],
        )

    def joins(user: uuid.UUID, topic: str) -> bool:
        """Receive (select) and send (insert) on the private channel, as Realtime checks."""
        outcomes = []
        for sql in (
            "select count(*) from realtime.messages",
            "insert into realtime.messages (topic, extension, payload, private)"
            " values (%(topic)s, 'broadcast', '{}', true) returning 1",
        ):
            try:
                with as_user(conn, user) as c:
                    c.execute("select set_config('realtime.topic', %s, true)", [topic])
                    row = c.execute(sql, {"topic": topic}).fetchone()
                    assert row is not None
                    outcomes.append("ok" if row[0] > 0 else "none")
            except psycopg.Error as exc:
                outcomes.append(exc.sqlstate or "")
        assert outcomes in (["ok", "ok"], ["none", "42501"]), outcomes
        return outcomes == ["ok", "ok"]

    topic = f"ticket:{ticket}"
    assert joins(world.patient, topic)
    assert joins(world.doctor.staff, topic)
    assert joins(world.admin, topic)
    assert not joins(world.pharmacy.staff, topic)  # not before the prescription is sent
    assert not joins(world.other_patient, topic)
    assert not joins(world.other_counselor.staff, f"ticket:{opened}")  # claimers: ticket only
    assert not joins(world.patient, "ticket:not-a-uuid")
    conn.execute("update public.healthcare_tickets set status = 'sent' where id = %s", [ticket])
    assert joins(world.pharmacy.staff, topic)
    with as_anon(conn) as c:
        c.execute("select set_config('realtime.topic', %s, true)", [topic])
        assert c.execute("select count(*) from realtime.messages").fetchone() == (0,)
