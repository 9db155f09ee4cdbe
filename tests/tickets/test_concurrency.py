"""Concurrency on real parallel connections: one claim wins, one prescription ticket per
appointment and pharmacy."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg

from tests.helpers import TestDatabase, as_user, create_provider, create_user, run_together
from tests.tickets.factories import make_reservation, make_world, ticket_at


def call_as_each(
    database: TestDatabase, users: list[uuid.UUID], call: Callable[[psycopg.Connection], object]
) -> list[object]:
    """Run call once per user, each in a request of its own connection, all started together.
    Returns each call's result or the error it raised."""
    connections = [database.connect() for _ in users]

    def as_one(i: int) -> object:
        with as_user(connections[i], users[i]) as c:
            return call(c)

    return run_together(len(users), as_one)


def test_twenty_concurrent_claims_have_exactly_one_winner(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "counseling", open_for_claim=True)
    claimers = [create_user(conn, "counselor") for _ in range(20)]
    providers = [
        create_provider(conn, "counselor", expertise=["anxiety"], owner=c) for c in claimers
    ]
    by_user = dict(zip(claimers, providers, strict=True))

    def claim(c: psycopg.Connection) -> object:
        me = c.execute("select auth.uid()").fetchone()
        assert me is not None
        row = c.execute(
            "select secondary_provider_id from public.claim_ticket(%s, %s)",
            [ticket, by_user[me[0]]],
        ).fetchone()
        assert row is not None
        return row[0]

    results = call_as_each(database, claimers, claim)
    winners = [r for r in results if isinstance(r, uuid.UUID)]
    losers = [r for r in results if isinstance(r, psycopg.Error)]
    assert len(winners) == 1
    assert len(losers) == 19
    assert {e.sqlstate for e in losers} == {"CH003"}
    row = conn.execute(
        "select status, secondary_provider_id, claimed_at is not null"
        " from public.healthcare_tickets where id = %s",
        [ticket],
    ).fetchone()
    assert row == ("claimed", winners[0], True)
    claimed = conn.execute(
        "select count(*) from public.ticket_timeline where ticket_id = %s"
        " and event_type = 'claimed'",
        [ticket],
    ).fetchone()
    assert claimed == (1,)


def test_ten_concurrent_get_or_create_calls_make_one_ticket_and_one_thread(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_world(conn)
    appointment = make_reservation(conn, world.doctor.owner, world.patient)
    doctors = [world.doctor.owner, world.doctor.staff] * 5

    def get_or_create(c: psycopg.Connection) -> object:
        row = c.execute(
            "select id from public.get_or_create_prescription_ticket(%s, %s)",
            [appointment, world.pharmacy.provider],
        ).fetchone()
        assert row is not None
        return row[0]

    results = call_as_each(database, doctors, get_or_create)
    assert all(isinstance(r, uuid.UUID) for r in results), results
    assert len(set(results)) == 1
    counts = conn.execute(
        "select (select count(*) from public.healthcare_tickets where appointment_id = %(a)s),"
        " (select count(*) from public.chat_threads where order_id = %(a)s)",
        {"a": appointment},
    ).fetchone()
    assert counts == (1, 1)
