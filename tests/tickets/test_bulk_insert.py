"""A statement inserting many tickets (the backfill writes 1,000 at a time) gives each ticket
exactly what inserting it alone gives: its thread with its parties as members, its 'created'
timeline row and, for a prescription past 'created', its tracking row at its status."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from tests.tickets.factories import World, make_reservation, make_world, write_prescription

COLUMNS = (
    "ticket_type",
    "status",
    "patient_id",
    "primary_provider_id",
    "secondary_provider_id",
    "appointment_id",
    "prescription_id",
)


def ticket_rows(conn: psycopg.Connection, world: World) -> list[tuple[Any, ...]]:
    """Four tickets of world's patient: prescriptions drafted, sent and already received, and a
    consultation request."""

    def prescription(status: str, linked: bool) -> tuple[Any, ...]:
        appointment = make_reservation(conn, world.doctor.owner, world.patient)
        rx = (
            write_prescription(
                conn, world.doctor.owner, world.pharmacy.provider, world.patient, appointment
            )
            if linked
            else None
        )
        return (
            "prescription",
            status,
            world.patient,
            world.doctor.provider,
            world.pharmacy.provider,
            appointment,
            rx,
        )

    return [
        prescription("created", linked=False),
        prescription("sent", linked=True),
        prescription("received", linked=True),
        ("consultation", "requested", world.patient, None, world.gp.provider, None, None),
    ]


def insert(conn: psycopg.Connection, rows: list[tuple[Any, ...]]) -> list[uuid.UUID]:
    values = ", ".join(["(" + ", ".join(["%s"] * len(COLUMNS)) + ")"] * len(rows))
    return [
        r[0]
        for r in conn.execute(
            f"insert into public.healthcare_tickets ({', '.join(COLUMNS)}) values {values}"
            " returning id",
            [value for row in rows for value in row],
        ).fetchall()
    ]


def what_it_got(conn: psycopg.Connection, ticket: uuid.UUID) -> dict[str, Any]:
    """What the database gave the ticket, with its own ids left out so tickets compare."""
    threads = conn.execute(
        "select th.id, th.order_id is not distinct from t.appointment_id,"
        " th.metadata ->> 'target_id' = t.secondary_provider_id::text"
        " from public.chat_threads as th join public.healthcare_tickets as t on t.id = th.ticket_id"
        " where th.ticket_id = %s",
        [ticket],
    ).fetchall()
    members = conn.execute(
        "select m.profile_id, m.role from public.chat_thread_members as m"
        " join public.chat_threads as th on th.id = m.thread_id where th.ticket_id = %s"
        " order by 1",
        [ticket],
    ).fetchall()
    timeline = conn.execute(
        "select event_type, to_status, actor_kind, source from public.ticket_timeline"
        " where ticket_id = %s order by created_at, id",
        [ticket],
    ).fetchall()
    tracking = conn.execute(
        "select current_status, sent_at is not null, received_at is not null"
        " from public.prescription_tracking where ticket_id = %s",
        [ticket],
    ).fetchall()
    return {
        "threads": [(keys_follow, target) for _id, keys_follow, target in threads],
        "members": members,
        "timeline": timeline,
        "tracking": tracking,
    }


def test_one_statement_inserting_several_tickets_gives_each_what_inserting_it_alone_gives(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    alone = [insert(conn, [row])[0] for row in ticket_rows(conn, world)]
    together = insert(conn, ticket_rows(conn, world))

    assert len(together) == 4
    for single, bulk in zip(alone, together, strict=True):
        assert what_it_got(conn, bulk) == what_it_got(conn, single)
    got = [what_it_got(conn, ticket) for ticket in together]
    # Each one thread whose keys are the ticket's, one timeline row, and the members it should
    # have: the patient and the doctor's practice; the pharmacy only once it was sent.
    assert [g["threads"] for g in got] == [[(True, True)]] * 4
    assert [len(g["timeline"]) for g in got] == [1, 1, 1, 1]
    pharmacists = {world.pharmacy.owner, world.pharmacy.staff}
    member_ids = [{profile for profile, _role in g["members"]} for g in got]
    assert not member_ids[0] & pharmacists
    assert pharmacists <= member_ids[1]
    assert world.patient in member_ids[0]
    assert world.doctor.owner in member_ids[0]
    assert [g["tracking"] for g in got[:3]] == [
        [],
        [("sent", True, False)],
        [("received", True, True)],
    ]


def test_an_insert_that_makes_no_ticket_writes_nothing(conn: psycopg.Connection) -> None:
    before = conn.execute(
        "select (select count(*) from public.chat_threads),"
        " (select count(*) from public.ticket_timeline)"
    ).fetchone()
    conn.execute(
        "insert into public.healthcare_tickets (ticket_type, patient_id)"
        " select 'consultation', id from public.profile where false"
    )
    after = conn.execute(
        "select (select count(*) from public.chat_threads),"
        " (select count(*) from public.ticket_timeline)"
    ).fetchone()
    assert after == before
