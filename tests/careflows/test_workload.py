"""Counsellor workload: an owner caps the tickets a provider has in hand
(set_provider_max_active_tickets); claim_ticket refuses past it (CH010, with the limit and the
count), also under concurrent claims of different tickets; provider_workload shows it."""

from __future__ import annotations

import uuid

import psycopg

from tests.helpers import TestDatabase, as_user, create_user, run_together
from tests.tickets.factories import make_world, raises_sqlstate, set_status


def open_ticket(conn: psycopg.Connection, patient: uuid.UUID) -> uuid.UUID:
    from tests.tickets.factories import insert_ticket

    return insert_ticket(
        conn, "counseling", patient_id=patient, category="anxiety", session_mode="video"
    )


def set_limit(conn: psycopg.Connection, user: uuid.UUID, provider: uuid.UUID, limit: int | None):
    with as_user(conn, user) as c:
        return c.execute(
            "select max_active_tickets from public.set_provider_max_active_tickets(%s, %s)",
            [provider, limit],
        ).fetchone()


def claim(conn: psycopg.Connection, user: uuid.UUID, ticket: uuid.UUID, provider: uuid.UUID):
    with as_user(conn, user) as c:
        return c.execute(
            "select status from public.claim_ticket(%s, %s)", [ticket, provider]
        ).fetchone()


def test_only_an_owner_or_an_admin_sets_the_limit(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    provider = world.counselor.provider
    assert set_limit(conn, world.counselor.owner, provider, 2) == (2,)
    assert set_limit(conn, world.admin, provider, 3) == (3,)
    for user in (world.counselor.staff, world.other_counselor.owner, world.patient):
        with raises_sqlstate("CH008"):
            set_limit(conn, user, provider, 100)
    with raises_sqlstate("22023"):
        set_limit(conn, world.counselor.owner, provider, -1)
    # Members cannot write the column past the function.
    with as_user(conn, world.counselor.owner) as c:
        assert (
            c.execute(
                "update public.providers set max_active_tickets = 50 where id = %s", [provider]
            ).rowcount
            == 0
        )
    assert conn.execute(
        "select max_active_tickets from public.providers where id = %s", [provider]
    ).fetchone() == (3,)


def test_a_claim_past_the_limit_is_refused_saying_the_limit_and_the_count(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    provider = world.counselor.provider
    set_limit(conn, world.counselor.owner, provider, 2)
    first, second, third = (open_ticket(conn, create_user(conn)) for _ in range(3))
    assert claim(conn, world.counselor.staff, first, provider) == ("claimed",)
    assert claim(conn, world.counselor.owner, second, provider) == ("claimed",)
    with raises_sqlstate("CH010", "2 active tickets (claimed or scheduled) and a limit of 2"):
        claim(conn, world.counselor.staff, third, provider)
    # Scheduled still counts; completed does not.
    conn.execute(
        "update public.healthcare_tickets set scheduled_time = now() + interval '1 day',"
        " meeting_link = 'https://meet.example/a' where id = %s",
        [first],
    )
    set_status(conn, first, "scheduled")
    with raises_sqlstate("CH010"):
        claim(conn, world.counselor.staff, third, provider)
    set_status(conn, first, "completed")
    assert claim(conn, world.counselor.staff, third, provider) == ("claimed",)
    # The ticket stays open for others; no limit: no cap.
    assert conn.execute(
        "select count(*) from public.healthcare_tickets where secondary_provider_id = %s",
        [world.other_counselor.provider],
    ).fetchone() == (0,)
    set_limit(conn, world.counselor.owner, provider, None)
    assert claim(conn, world.counselor.staff, open_ticket(conn, create_user(conn)), provider)


def test_a_stranger_learns_nothing_of_the_limit(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    set_limit(conn, world.counselor.owner, world.counselor.provider, 0)
    ticket = open_ticket(conn, world.patient)
    # Not a member: the generic refusal, not the workload.
    with raises_sqlstate("CH008"):
        claim(conn, world.other_counselor.owner, ticket, world.counselor.provider)
    with raises_sqlstate("CH010"):
        claim(conn, world.counselor.staff, ticket, world.counselor.provider)


def test_the_limit_holds_under_concurrent_claims_of_different_tickets(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_world(conn)
    provider = world.counselor.provider
    set_limit(conn, world.counselor.owner, provider, 3)
    counsellors = [create_user(conn, "counselor") for _ in range(10)]
    for user in counsellors:
        conn.execute(
            "insert into public.provider_members (provider_id, profile_id, member_role)"
            " values (%s, %s, 'staff')",
            [provider, user],
        )
    tickets = [open_ticket(conn, create_user(conn)) for _ in counsellors]
    connections = [database.connect() for _ in counsellors]

    def one(i: int) -> object:
        return claim(connections[i], counsellors[i], tickets[i], provider)

    results = run_together(len(counsellors), one)
    won = [r for r in results if r == ("claimed",)]
    refused = [r for r in results if isinstance(r, psycopg.Error)]
    assert len(won) == 3
    assert {e.sqlstate for e in refused} == {"CH010"}
    assert len(refused) == 7
    assert conn.execute(
        "select count(*) from public.healthcare_tickets where secondary_provider_id = %s",
        [provider],
    ).fetchone() == (3,)


def test_admins_see_every_providers_workload_and_members_their_own(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    set_limit(conn, world.counselor.owner, world.counselor.provider, 5)
    claim(conn, world.counselor.staff, open_ticket(conn, world.patient), world.counselor.provider)
    query = (
        "select provider_id, max_active_tickets, active_tickets from public.provider_workload"
        " where kind = 'counselor' order by provider_id"
    )
    with as_user(conn, world.admin) as c:
        rows = c.execute(query).fetchall()
    assert sorted(rows) == sorted(
        [(world.counselor.provider, 5, 1), (world.other_counselor.provider, None, 0)]
    )
    with as_user(conn, world.counselor.staff) as c:
        assert c.execute(query).fetchall() == [(world.counselor.provider, 5, 1)]
    with as_user(conn, world.patient) as c:
        assert c.execute(query).fetchall() == []
