"""Clinical ticket rows are kept (access issue, rule 11): no API role deletes tickets or their
timeline, deleting an account never deletes them, and the one erasure procedure is audited."""

from __future__ import annotations

import psycopg

from tests.helpers import as_service, as_user
from tests.tickets.factories import make_world, raises_sqlstate, ticket_at


def count(conn: psycopg.Connection, sql: str, *params: object) -> int:
    row = conn.execute(sql, list(params)).fetchone()
    assert row is not None
    return row[0]


def test_no_api_role_deletes_tickets_or_their_timeline(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "referral", "sent")
    for statement in (
        "delete from public.healthcare_tickets where id = %s",
        "delete from public.ticket_timeline where ticket_id = %s",
    ):
        # The attack: service_role deleting a ticket took its "append-only" timeline along.
        with as_service(conn) as c, raises_sqlstate("42501"):
            c.execute(statement, [ticket])
        for user in (world.admin, world.doctor.owner, world.patient):
            with as_user(conn, user) as c, raises_sqlstate("42501"):
                c.execute(statement, [ticket])
    assert count(conn, "select count(*) from public.healthcare_tickets where id = %s", ticket) == 1


def test_deleting_an_account_never_deletes_its_tickets(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "referral", "sent", created_by=world.doctor.owner)
    with raises_sqlstate("23503", "healthcare_tickets"):
        conn.execute("delete from auth.users where id = %s", [world.patient])
    # The practitioner who opened it may leave: the ticket stays (the practice is its party).
    conn.execute("delete from auth.users where id = %s", [world.doctor.owner])
    row = conn.execute(
        "select patient_id, primary_provider_id, created_by from public.healthcare_tickets"
        " where id = %s",
        [ticket],
    ).fetchone()
    assert row == (world.patient, world.doctor.provider, None)
    assert count(conn, "select count(*) from public.ticket_timeline where ticket_id = %s", ticket)


def test_the_erasure_procedure_is_the_dbas_and_leaves_an_audit_row(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "referral", "sent")
    for caller in ("service_role", "authenticated"):
        with conn.transaction(), raises_sqlstate("42501"):
            conn.execute(f"set local role {caller}")
            conn.execute("select private.erase_ticket(%s, 'why', 'who')", [ticket])
    with raises_sqlstate("22023"):
        conn.execute("select private.erase_ticket(%s, ' ', 'patient')", [ticket])
    timeline = count(
        conn, "select count(*) from public.ticket_timeline where ticket_id = %s", ticket
    )
    conn.execute(
        "select private.erase_ticket(%s, 'GDPR art. 17 request 42', 'the patient, by email')",
        [ticket],
    )
    assert count(conn, "select count(*) from public.healthcare_tickets where id = %s", ticket) == 0
    assert (
        count(conn, "select count(*) from public.ticket_timeline where ticket_id = %s", ticket) == 0
    )
    audit = conn.execute(
        "select ticket_type, patient_id, reason, requested_by, erased_by = session_user,"
        " timeline_rows from private.ticket_erasures where ticket_id = %s",
        [ticket],
    ).fetchone()
    assert audit == (
        "referral",
        world.patient,
        "GDPR art. 17 request 42",
        "the patient, by email",
        True,
        timeline,
    )
