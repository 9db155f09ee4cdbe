"""Ticket status machines: every allowed transition succeeds for its actor and is refused for
every other one; the system skips forward but never back or out of a terminal status; protected
columns, prescription linking and counselling scheduling."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.helpers import as_service, as_user
from tests.tickets.factories import (
    TICKET_TYPES,
    World,
    attach_file,
    insert_ticket,
    make_world,
    raises_sqlstate,
    set_status,
    ticket_at,
    ticket_status,
    write_prescription,
)

# The state machines of DESIGN.md, as (type, from, to, actor). Admin rows are added below.
TRANSITIONS: set[tuple[str, str, str, str]] = {
    ("prescription", "created", "sent", "primary"),
    ("prescription", "created", "cancelled", "primary"),
    ("prescription", "sent", "cancelled", "primary"),
    ("prescription", "received", "cancelled", "primary"),
    ("prescription", "sent", "received", "secondary"),
    ("prescription", "received", "processing", "secondary"),
    ("prescription", "processing", "ready", "secondary"),
    ("prescription", "ready", "shipped", "secondary"),
    ("prescription", "shipped", "out_for_delivery", "secondary"),
    ("prescription", "out_for_delivery", "delivered", "secondary"),
    ("prescription", "ready", "completed", "secondary"),
    ("prescription", "processing", "shipped", "secondary"),
    ("prescription", "shipped", "delivered", "secondary"),
    ("prescription", "sent", "cancelled", "secondary"),
    ("prescription", "received", "cancelled", "secondary"),
    ("prescription", "processing", "cancelled", "secondary"),
    ("prescription", "ready", "cancelled", "secondary"),
    ("prescription", "processing", "failed", "secondary"),
    ("prescription", "shipped", "failed", "secondary"),
    ("prescription", "out_for_delivery", "failed", "secondary"),
    ("consultation", "requested", "accepted", "secondary"),
    ("consultation", "accepted", "in_progress", "secondary"),
    ("consultation", "in_progress", "completed", "secondary"),
    ("consultation", "requested", "declined", "secondary"),
    ("consultation", "requested", "cancelled", "patient"),
    ("consultation", "accepted", "cancelled", "patient"),
    ("referral", "created", "sent", "primary"),
    ("referral", "sent", "accepted", "secondary"),
    ("referral", "accepted", "scheduled", "secondary"),
    ("referral", "scheduled", "completed", "secondary"),
    ("referral", "sent", "declined", "secondary"),
    ("referral", "created", "cancelled", "primary"),
    ("referral", "sent", "cancelled", "primary"),
    ("referral", "accepted", "cancelled", "primary"),
    ("diagnostic", "created", "sent", "primary"),
    ("diagnostic", "sent", "scheduled", "secondary"),
    ("diagnostic", "scheduled", "in_progress", "secondary"),
    ("diagnostic", "in_progress", "results_ready", "secondary"),
    ("diagnostic", "results_ready", "completed", "primary"),
    ("diagnostic", "created", "cancelled", "primary"),
    ("diagnostic", "sent", "cancelled", "primary"),
    ("diagnostic", "scheduled", "cancelled", "primary"),
    ("diagnostic", "in_progress", "failed", "secondary"),
    ("counseling", "claimed", "scheduled", "secondary"),
    ("counseling", "scheduled", "completed", "secondary"),
    ("counseling", "completed", "closed", "patient"),
    ("counseling", "completed", "closed", "secondary"),
    ("counseling", "open", "closed", "patient"),
}
NON_TERMINAL = {
    "prescription": [
        "created",
        "sent",
        "received",
        "processing",
        "ready",
        "shipped",
        "out_for_delivery",
    ],
    "consultation": ["requested", "accepted", "in_progress"],
    "referral": ["created", "sent", "accepted", "scheduled"],
    "diagnostic": ["created", "sent", "scheduled", "in_progress", "results_ready"],
    "counseling": ["open", "claimed", "scheduled", "completed"],
}
TERMINAL = {
    "prescription": ["delivered", "completed", "cancelled", "failed"],
    "consultation": ["completed", "declined", "cancelled"],
    "referral": ["completed", "declined", "cancelled"],
    "diagnostic": ["completed", "cancelled", "failed"],
    "counseling": ["closed"],
}
for _type, _statuses in NON_TERMINAL.items():
    for _status in _statuses:
        TRANSITIONS.add(
            (_type, _status, "closed" if _type == "counseling" else "cancelled", "admin")
        )

ACTORS = ("patient", "primary", "secondary", "admin", "claimer", "stranger")


def actor_user(world: World, ticket_type: str, actor: str) -> uuid.UUID:
    return {
        "patient": world.patient,
        "primary": world.doctor.staff,
        "secondary": world.fulfiller(ticket_type).staff,
        "admin": world.admin,
        # Same kind as the fulfiller, not a party of this (assigned) ticket.
        "claimer": world.other_counselor.staff
        if ticket_type == "counseling"
        else world.other_pharmacy.staff,
        "stranger": world.other_patient,
    }[actor]


def sees_ticket(ticket_type: str, status: str, actor: str) -> bool:
    if actor in ("patient", "admin"):
        return True
    if actor == "primary":
        return ticket_type in ("prescription", "referral", "diagnostic")
    if actor == "secondary":
        # The fulfiller of a drafted type is a party only once the ticket was sent.
        return not (
            ticket_type in ("prescription", "referral", "diagnostic") and status == "created"
        )
    return False


def status_update(ticket_type: str, to_status: str) -> str:
    if ticket_type == "diagnostic" and to_status == "scheduled":
        # A diagnostic order is scheduled with its time.
        return (
            "update public.healthcare_tickets set status = %s,"
            " scheduled_time = now() + interval '1 day' where id = %s"
        )
    if ticket_type == "counseling" and to_status == "scheduled":
        return (
            "update public.healthcare_tickets set status = %s,"
            " scheduled_time = now() + interval '1 day', meeting_link = 'https://meet.example/s'"
            " where id = %s"
        )
    return "update public.healthcare_tickets set status = %s where id = %s"


def needs_result(
    conn: psycopg.Connection, world: World, ticket: uuid.UUID, ticket_type: str, to_status: str
) -> None:
    """A diagnostic order's results are ready only with a result file: upload one first."""
    if ticket_type == "diagnostic" and to_status == "results_ready":
        attach_file(conn, ticket, "results", world.diagnostics.staff)


def transition_id(t: tuple[str, str, str, str]) -> str:
    return f"{t[0]}:{t[1]}->{t[2]}:by-{t[3]}"


def test_state_machine_tables_hold_the_designed_transitions(conn: psycopg.Connection) -> None:
    rows = set(
        conn.execute(
            "select ticket_type, from_status, to_status, actor"
            " from public.ticket_status_transitions"
        ).fetchall()
    )
    assert rows == TRANSITIONS
    terminal = conn.execute(
        "select ticket_type, array_agg(status order by status) from public.ticket_statuses"
        " where is_terminal group by 1"
    ).fetchall()
    assert dict(terminal) == {k: sorted(v) for k, v in TERMINAL.items()}


@pytest.mark.parametrize("transition", sorted(TRANSITIONS), ids=transition_id)
def test_transition_succeeds_for_its_actor_and_is_refused_for_every_other(
    conn: psycopg.Connection, transition: tuple[str, str, str, str]
) -> None:
    ticket_type, from_status, to_status, actor = transition
    world = make_world(conn)
    allowed = {a for (t, f, s, a) in TRANSITIONS if (t, f, s) == transition[:3]}
    for other in ACTORS:
        if other in allowed:
            continue
        ticket = ticket_at(conn, world, ticket_type, from_status)
        needs_result(conn, world, ticket, ticket_type, to_status)
        with as_user(conn, actor_user(world, ticket_type, other)) as c:
            if sees_ticket(ticket_type, from_status, other):
                with raises_sqlstate("CH001"):
                    c.execute(status_update(ticket_type, to_status), [to_status, ticket])
            else:
                updated = c.execute(status_update(ticket_type, to_status), [to_status, ticket])
                assert updated.rowcount == 0, other
        assert ticket_status(conn, ticket) == from_status

    ticket = ticket_at(conn, world, ticket_type, from_status)
    needs_result(conn, world, ticket, ticket_type, to_status)
    with as_user(conn, actor_user(world, ticket_type, actor)) as c:
        row = c.execute(
            status_update(ticket_type, to_status) + " returning status", [to_status, ticket]
        ).fetchone()
    assert row == (to_status,)
    event = conn.execute(
        "select event_type, from_status, to_status, actor_id, actor_kind, source"
        " from public.ticket_timeline where ticket_id = %s order by created_at desc limit 1",
        [ticket],
    ).fetchone()
    assert event == (
        "status_changed",
        from_status,
        to_status,
        actor_user(world, ticket_type, actor),
        actor,
        "app",
    )


@pytest.mark.parametrize("ticket_type", TICKET_TYPES)
def test_no_one_leaves_a_terminal_status(conn: psycopg.Connection, ticket_type: str) -> None:
    world = make_world(conn)
    for terminal in TERMINAL[ticket_type]:
        ticket = ticket_at(conn, world, ticket_type, terminal)
        with as_user(conn, world.admin) as c, raises_sqlstate("CH001", "final"):
            c.execute(
                "update public.healthcare_tickets set status = %s where id = %s",
                [NON_TERMINAL[ticket_type][0], ticket],
            )
        target = (
            "cancelled"
            if terminal != "cancelled" and ticket_type != "counseling"
            else (NON_TERMINAL[ticket_type][-1])
        )
        with raises_sqlstate("CH001", "final"):
            conn.execute(
                "update public.healthcare_tickets set status = %s where id = %s", [target, ticket]
            )


def test_system_skips_forward_with_one_timeline_row(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", "ready")
    # The Lifefile feed: a non-API session naming its source.
    with conn.transaction():
        conn.execute("select set_config('app.source', 'lifefile', true)")
        conn.execute(
            "update public.healthcare_tickets set status = 'delivered' where id = %s", [ticket]
        )
    rows = conn.execute(
        "select event_type, from_status, to_status, actor_kind, source"
        " from public.ticket_timeline where ticket_id = %s and from_status = 'ready'",
        [ticket],
    ).fetchall()
    assert rows == [("status_changed", "ready", "delivered", "system", "lifefile")]
    closed = conn.execute(
        "select closed_at is not null from public.healthcare_tickets where id = %s", [ticket]
    ).fetchone()
    assert closed == (True,)


def test_service_role_skips_forward_but_never_back(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", "received")
    with as_service(conn) as c:
        c.execute("update public.healthcare_tickets set status = 'shipped' where id = %s", [ticket])
    assert ticket_status(conn, ticket) == "shipped"
    with as_service(conn) as c, raises_sqlstate("CH001", "move back"):
        c.execute(
            "update public.healthcare_tickets set status = 'processing' where id = %s", [ticket]
        )
    source = conn.execute(
        "select source from public.ticket_timeline where ticket_id = %s and to_status = 'shipped'",
        [ticket],
    ).fetchone()
    assert source == ("system",)


def test_parties_cannot_skip_steps(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", "sent")
    with as_user(conn, world.pharmacy.owner) as c, raises_sqlstate("CH001", "'received'"):
        c.execute(
            "update public.healthcare_tickets set status = 'delivered' where id = %s", [ticket]
        )


def test_new_tickets_start_at_the_initial_status(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    with as_user(conn, world.patient) as c:
        row = c.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id, category, urgency,"
            " session_mode) values ('counseling', %s, 'anxiety', 'high', 'chat')"
            " returning status, created_by, required_provider_kind",
            [world.patient],
        ).fetchone()
    assert row == ("open", world.patient, "counselor")
    with as_user(conn, world.patient) as c, raises_sqlstate("CH001", "starts as 'open'"):
        c.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id, status)"
            " values ('counseling', %s, 'claimed')",
            [world.patient],
        )
    with as_user(conn, world.patient) as c, raises_sqlstate("CH008"):
        c.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id, created_by)"
            " values ('counseling', %s, %s)",
            [world.patient, world.other_patient],
        )


@pytest.mark.parametrize(
    ("column", "value_sql"),
    [
        ("ticket_type", "'referral'"),
        ("patient_id", "%(other_patient)s"),
        ("primary_provider_id", "%(other_provider)s"),
        ("created_by", "%(other_patient)s"),
        ("required_provider_kind", "'clinic'"),
    ],
)
def test_parties_cannot_change_what_a_ticket_is_about(
    conn: psycopg.Connection, column: str, value_sql: str
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "diagnostic", "created")
    params = {
        "other_patient": world.other_patient,
        "other_provider": world.gp.provider,
        "id": ticket,
    }
    for user in (world.doctor.owner, world.patient, world.admin):
        with as_user(conn, user) as c, raises_sqlstate("CH007", column):
            c.execute(
                f"update public.healthcare_tickets set {column} = {value_sql} where id = %(id)s",
                params,
            )


def test_bookkeeping_columns_are_not_writable_through_the_api(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "diagnostic", "created")
    for column in ("claimed_at", "closed_at", "legacy_thread_id", "created_at", "id"):
        value = "gen_random_uuid()" if column in ("id", "legacy_thread_id") else "now()"
        with as_user(conn, world.doctor.owner) as c, raises_sqlstate("42501"):
            c.execute(
                f"update public.healthcare_tickets set {column} = {value} where id = %s",
                [ticket],
            )


def test_fulfiller_changes_only_at_the_initial_status_by_the_requester(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "diagnostic", "created")
    other_centre = conn.execute(
        "insert into public.providers (kind, name) values ('diagnostics_center', 'Lab B')"
        " returning id"
    ).fetchone()
    assert other_centre is not None
    with as_user(conn, world.doctor.staff) as c:
        c.execute(
            "update public.healthcare_tickets set secondary_provider_id = %s where id = %s",
            [other_centre[0], ticket],
        )
    with as_user(conn, world.doctor.staff) as c, raises_sqlstate("23514", "needs a"):
        c.execute(
            "update public.healthcare_tickets set secondary_provider_id = %s where id = %s",
            [world.pharmacy.provider, ticket],
        )
    set_status(conn, ticket, "sent")
    with as_user(conn, world.doctor.staff) as c, raises_sqlstate("CH007", "claim_ticket"):
        c.execute(
            "update public.healthcare_tickets set secondary_provider_id = %s where id = %s",
            [world.diagnostics.provider, ticket],
        )
    kinds = conn.execute(
        "select event_type from public.ticket_timeline where ticket_id = %s order by created_at",
        [ticket],
    ).fetchall()
    assert [k[0] for k in kinds] == ["created", "assigned", "status_changed"]


def test_prescription_ticket_is_sent_only_with_a_fitting_prescription(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", with_prescription=False)
    with as_user(conn, world.doctor.owner) as c, raises_sqlstate("CH004", "attach a prescription"):
        c.execute("update public.healthcare_tickets set status = 'sent' where id = %s", [ticket])
    wrong = {
        "another patient": write_prescription(
            conn, world.doctor.owner, world.pharmacy.provider, world.other_patient
        ),
        "another pharmacy": write_prescription(
            conn, world.doctor.owner, world.other_pharmacy.provider, world.patient
        ),
    }
    for reason, rx in wrong.items():
        with as_user(conn, world.doctor.owner) as c, raises_sqlstate("CH004", reason):
            c.execute(
                "update public.healthcare_tickets set prescription_id = %s, status = 'sent'"
                " where id = %s",
                [rx, ticket],
            )
    # Someone else's prescription: one answer that says nothing about it (CH008).
    strangers = write_prescription(conn, world.gp.owner, world.pharmacy.provider, world.patient)
    with as_user(conn, world.doctor.owner) as c, raises_sqlstate("CH008", "not one you can link"):
        c.execute(
            "update public.healthcare_tickets set prescription_id = %s, status = 'sent'"
            " where id = %s",
            [strangers, ticket],
        )
    # A colleague's prescription fits, and its details are checked.
    colleagues = write_prescription(
        conn, world.doctor.staff, world.pharmacy.provider, world.other_patient
    )
    with as_user(conn, world.doctor.owner) as c, raises_sqlstate("CH004", "another patient"):
        c.execute(
            "update public.healthcare_tickets set prescription_id = %s where id = %s",
            [colleagues, ticket],
        )
    with as_user(conn, world.doctor.owner) as c:
        rx = c.execute(
            "insert into public.prescriptions (doctor_id, pharmacy_id, patient_id, medications)"
            " values (%s, %s, %s, '[]') returning id",
            [world.doctor.owner, world.pharmacy.provider, world.patient],
        ).fetchone()
        assert rx is not None
        c.execute(
            "update public.healthcare_tickets set prescription_id = %s, status = 'sent'"
            " where id = %s",
            [rx[0], ticket],
        )
    events = conn.execute(
        "select event_type from public.ticket_timeline where ticket_id = %s order by created_at",
        [ticket],
    ).fetchall()
    assert [e[0] for e in events] == ["created", "status_changed", "prescription_linked"] or [
        e[0] for e in events
    ] == ["created", "prescription_linked", "status_changed"]
    # Once sent, the prescription cannot be swapped.
    with as_user(conn, world.doctor.owner) as c, raises_sqlstate("CH007"):
        c.execute(
            "update public.healthcare_tickets set prescription_id = null where id = %s", [ticket]
        )


def test_prescription_ticket_past_created_always_has_its_prescription(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    with raises_sqlstate("23514", "healthcare_tickets_prescription_required"):
        insert_ticket(
            conn,
            "prescription",
            status="sent",
            patient_id=world.patient,
            primary_provider_id=world.doctor.provider,
            secondary_provider_id=world.pharmacy.provider,
        )


def test_scheduling_a_counselling_session_needs_time_and_link(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "counseling", "claimed")
    with as_user(conn, world.counselor.staff) as c, raises_sqlstate("23514", "meeting link"):
        c.execute(
            "update public.healthcare_tickets set status = 'scheduled',"
            " scheduled_time = now() + interval '1 day' where id = %s",
            [ticket],
        )
    with as_user(conn, world.counselor.staff) as c, raises_sqlstate("23514"):
        c.execute(
            "update public.healthcare_tickets set status = 'scheduled',"
            " meeting_link = 'https://meet.example/a' where id = %s",
            [ticket],
        )
    in_person = ticket_at(conn, world, "counseling", "claimed", session_mode="in_person")
    with as_user(conn, world.counselor.staff) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'scheduled',"
            " scheduled_time = now() + interval '1 day' where id = %s",
            [in_person],
        )
    assert ticket_status(conn, in_person) == "scheduled"
