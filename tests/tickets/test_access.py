"""Attacks on the ticket core's edges, each as the attacker through the API roles: what
claim_ticket and the message triggers answer a stranger, client-chosen ids, unsolicited contact
through legacy threads, notifications of a provider one has left, deletions through the API,
and the checks no other test proves on their own (notify() leaving out the actor, the message
insert policy's sender check)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.helpers import as_anon, as_service, as_user, create_user
from tests.tickets.factories import make_world, raises_sqlstate, set_status, ticket_at


def thread_of(conn: psycopg.Connection, ticket: uuid.UUID) -> uuid.UUID:
    row = conn.execute(
        "select id from public.chat_threads where ticket_id = %s", [ticket]
    ).fetchone()
    assert row is not None
    return row[0]


def claim_error(conn: psycopg.Connection, user: uuid.UUID, ticket: uuid.UUID, provider: uuid.UUID):
    with as_user(conn, user) as c, pytest.raises(psycopg.Error) as caught:
        c.execute("select public.claim_ticket(%s, %s)", [ticket, provider])
    return caught.value


def test_claim_ticket_tells_a_stranger_nothing_about_a_ticket_it_could_not_see(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    me, mine = world.counselor.owner, world.counselor.provider  # counsellor listing anxiety
    claimed_elsewhere = ticket_at(conn, world, "counseling", open_for_claim=True, category="stress")
    with as_user(conn, world.other_counselor.owner) as c:
        c.execute(
            "select public.claim_ticket(%s, %s)",
            [claimed_elsewhere, world.other_counselor.provider],
        )
    closed_unclaimed = ticket_at(conn, world, "counseling", open_for_claim=True)
    set_status(conn, closed_unclaimed, "closed")
    hidden = {
        "unknown": uuid.uuid4(),
        "a sent prescription": ticket_at(conn, world, "prescription", "sent"),
        "open, category not listed": ticket_at(
            conn, world, "counseling", open_for_claim=True, category="stress"
        ),
        "claimed, category not listed": claimed_elsewhere,
        "closed before anyone claimed it": closed_unclaimed,
        "addressed to another counsellor": ticket_at(conn, world, "counseling", "scheduled"),
    }
    for what, ticket in hidden.items():
        error = claim_error(conn, me, ticket, mine)
        assert error.sqlstate == "CH008", what
        # One generic answer: the ids the caller gave, nothing else (no status, no owner).
        assert str(error).splitlines()[0] == (
            f"ticket {ticket} is not open for provider {mine} to claim (CH008)"
        ), what
    # A specialist asking for a referral still being drafted: not open, so not seen.
    draft = ticket_at(conn, world, "referral", open_for_claim=True)
    error = claim_error(conn, world.specialist.owner, draft, world.specialist.provider)
    assert error.sqlstate == "CH008"
    assert "created" not in str(error)


def test_an_eligible_claimer_who_lost_the_race_hears_it_was_claimed(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "counseling", open_for_claim=True, category="anxiety")
    with as_user(conn, world.other_counselor.staff) as c:
        c.execute("select public.claim_ticket(%s, %s)", [ticket, world.other_counselor.provider])
    error = claim_error(conn, world.counselor.staff, ticket, world.counselor.provider)
    assert error.sqlstate == "CH003"
    assert "already been claimed" in str(error)


def test_claim_ticket_is_a_security_invoker_wrapper_of_a_private_definer(
    conn: psycopg.Connection,
) -> None:
    rows = conn.execute(
        "select n.nspname, p.prosecdef, pg_get_function_arguments(p.oid),"
        " pg_get_function_result(p.oid) from pg_proc as p"
        " join pg_namespace as n on n.oid = p.pronamespace"
        " where p.proname = 'claim_ticket' order by n.nspname"
    ).fetchall()
    signature = ("p_ticket_id uuid, p_provider_id uuid", "healthcare_tickets")
    assert rows == [("private", True, *signature), ("public", False, *signature)]


def test_a_stranger_posting_in_a_thread_learns_nothing_about_it(conn: psycopg.Connection) -> None:
    """The message trigger authorises first: a non-member gets the policy's refusal, not the
    ticket's id and status (which a member gets, with what to do)."""
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", with_prescription=False)
    thread = thread_of(conn, ticket)
    for stranger, sender in (
        (world.other_patient, None),
        (world.other_pharmacy.staff, world.doctor.owner),
        (world.pharmacy.staff, None),  # the pharmacy of the unsent draft
    ):
        with as_user(conn, stranger) as c, pytest.raises(psycopg.Error) as caught:
            c.execute(
                "insert into public.chat_messages (thread_id, sender_id, body)"
                " values (%s, %s, 'hello?')",
                [thread, sender],
            )
        assert caught.value.sqlstate == "42501"
        assert str(ticket) not in str(caught.value)
        assert "created" not in str(caught.value)
    with (
        as_user(conn, world.doctor.staff) as c,
        raises_sqlstate("CH004", "attach a prescription"),
    ):
        c.execute(
            "insert into public.chat_messages (thread_id, body) values (%s, 'hello')", [thread]
        )


def test_ids_of_threads_and_messages_are_the_databases(conn: psycopg.Connection) -> None:
    """A client-chosen id would tell an attacker which ids exist (23505)."""
    world = make_world(conn)
    ticket = ticket_at(conn, world, "consultation", "accepted")
    thread = thread_of(conn, ticket)
    with as_user(conn, world.patient) as c, raises_sqlstate("42501"):
        c.execute(
            "insert into public.chat_messages (id, thread_id, body) values (%s, %s, 'x')",
            [uuid.uuid4(), thread],
        )
    with as_user(conn, world.patient) as c, raises_sqlstate("42501"):
        c.execute(
            "insert into public.chat_threads (id, title, created_by) values (%s, 'x', %s)",
            [thread, world.patient],
        )
    with as_user(conn, world.patient) as c:
        row = c.execute(
            "insert into public.chat_messages (thread_id, body) values (%s, 'x') returning id",
            [thread],
        ).fetchone()
    assert row is not None


def start_legacy_thread(conn: psycopg.Connection, creator: uuid.UUID) -> uuid.UUID:
    with as_user(conn, creator) as c:
        row = c.execute(
            "insert into public.chat_threads (title, created_by) values ('Chat', %s) returning id",
            [creator],
        ).fetchone()
    assert row is not None
    return row[0]


def add_to_thread(conn: psycopg.Connection, creator: uuid.UUID, thread: uuid.UUID, who: uuid.UUID):
    with as_user(conn, creator) as c:
        c.execute(
            "insert into public.chat_thread_members (thread_id, profile_id, role)"
            " values (%s, %s, 'member')",
            [thread, who],
        )


def test_a_legacy_thread_takes_only_members_who_share_care_with_its_creator(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket_at(conn, world, "prescription", "sent")  # patient, doctor's and pharmacy's staff
    draft = ticket_at(conn, world, "diagnostic", patient_id=world.other_patient)  # never sent

    # The phisher: any account, any victim.
    phisher, victim = create_user(conn, "patient"), create_user(conn, "patient")
    thread = start_legacy_thread(conn, phisher)
    add_to_thread(conn, phisher, thread, phisher)
    with raises_sqlstate("42501"):
        add_to_thread(conn, phisher, thread, victim)
    with as_user(conn, phisher) as c:  # alone in the thread: nobody to reach
        c.execute(
            "insert into public.chat_messages (thread_id, body) values (%s, 'win!')", [thread]
        )
    assert conn.execute(
        "select count(*) from public.notifications where recipient_id = %s", [victim]
    ).fetchone() == (0,)

    # People who share a ticket or a provider may still talk as before.
    doctor_thread = start_legacy_thread(conn, world.doctor.owner)
    for who in (world.doctor.owner, world.doctor.staff, world.patient, world.pharmacy.staff):
        add_to_thread(conn, world.doctor.owner, doctor_thread, who)
    with raises_sqlstate("42501"):
        add_to_thread(conn, world.doctor.owner, doctor_thread, victim)
    # The centre of a diagnostic order never sent shares nothing with its patient yet.
    assert draft
    centre_thread = start_legacy_thread(conn, world.diagnostics.staff)
    with raises_sqlstate("42501"):
        add_to_thread(conn, world.diagnostics.staff, centre_thread, world.other_patient)
    # Only the creator of a legacy thread manages it; a ticket's thread follows its ticket.
    with raises_sqlstate("42501"):
        add_to_thread(conn, world.patient, doctor_thread, world.doctor.staff)


def test_a_member_removed_from_a_provider_loses_the_notifications_of_its_tickets(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", "sent")
    with as_user(conn, world.patient) as c:
        c.execute(
            "insert into public.chat_messages (thread_id, body) values (%s, 'my new address is')",
            [thread_of(conn, ticket)],
        )
    conn.execute(
        "insert into public.notifications (recipient_id, type, title) values (%s, 'system', 'x')",
        [world.pharmacy.staff],
    )

    def mine(user: uuid.UUID) -> list[tuple[str, uuid.UUID | None]]:
        with as_user(conn, user) as c:
            return c.execute(
                "select type, ticket_id from public.notifications order by type"
            ).fetchall()

    assert ("chat_message", ticket) in mine(world.pharmacy.staff)
    with as_user(conn, world.pharmacy.owner) as c:
        c.execute(
            "delete from public.provider_members where provider_id = %s and profile_id = %s",
            [world.pharmacy.provider, world.pharmacy.staff],
        )
    assert mine(world.pharmacy.staff) == [("system", None)]
    assert ("chat_message", ticket) in mine(world.pharmacy.owner)
    # A removed member who is still a party another way (here: the patient) keeps theirs.
    conn.execute(
        "insert into public.provider_members (provider_id, profile_id) values (%s, %s)",
        [world.doctor.provider, world.patient],
    )
    conn.execute(
        "delete from public.provider_members where provider_id = %s and profile_id = %s",
        [world.doctor.provider, world.patient],
    )
    assert any(t == ticket for _kind, t in mine(world.patient))


def test_nobody_deletes_threads_messages_or_timeline_of_a_ticket_through_the_api(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "consultation", "accepted")
    thread = thread_of(conn, ticket)
    with as_user(conn, world.patient) as c:
        c.execute("insert into public.chat_messages (thread_id, body) values (%s, 'hi')", [thread])
    for request in (as_service, as_anon):
        for sql in (
            "delete from public.ticket_timeline where ticket_id = %(ticket)s",
            "delete from public.chat_messages where thread_id = %(thread)s",
            "delete from public.chat_threads where id = %(thread)s",
        ):
            with request(conn) as c, raises_sqlstate("42501"):
                c.execute(sql, {"ticket": ticket, "thread": thread})
    for sql in (
        "delete from public.ticket_timeline where ticket_id = %(ticket)s",
        "delete from public.chat_messages where thread_id = %(thread)s",
        "delete from public.chat_threads where id = %(thread)s",
    ):
        with as_user(conn, world.admin) as c, raises_sqlstate("42501"):
            c.execute(sql, {"ticket": ticket, "thread": thread})
    counts = conn.execute(
        "select (select count(*) from public.chat_threads where id = %(thread)s),"
        " (select count(*) from public.chat_messages where thread_id = %(thread)s),"
        " (select count(*) > 0 from public.ticket_timeline where ticket_id = %(ticket)s)",
        {"ticket": ticket, "thread": thread},
    ).fetchone()
    assert counts == (1, 1, True)
    # A legacy thread (no ticket, no messages) may still be removed by the service.
    legacy = start_legacy_thread(conn, world.patient)
    with as_service(conn) as c:
        assert c.execute("delete from public.chat_threads where id = %s", [legacy]).rowcount == 1


def test_nobody_is_notified_of_their_own_action(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "consultation")  # requested, addressed to the GP
    with as_user(conn, world.patient) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'cancelled' where id = %s", [ticket]
        )
    recipients = {
        r[0]
        for r in conn.execute(
            "select recipient_id from public.notifications"
            " where ticket_id = %s and type = 'consultation_cancelled'",
            [ticket],
        ).fetchall()
    }
    assert recipients == world.gp.members


def test_the_message_insert_policy_checks_the_sender_on_its_own(conn: psycopg.Connection) -> None:
    """With the message trigger out of the way, the insert policy alone refuses a message posted
    under another member's name (and takes the caller's own)."""
    world = make_world(conn)
    ticket = ticket_at(conn, world, "consultation", "accepted")
    thread = thread_of(conn, ticket)
    with conn.transaction():
        conn.execute("alter table public.chat_messages disable trigger check_chat_message")
        with raises_sqlstate("42501", "row-level security"), as_user(conn, world.patient) as c:
            c.execute(
                "insert into public.chat_messages (thread_id, sender_id, body)"
                " values (%s, %s, 'impersonated')",
                [thread, world.gp.staff],
            )
        with as_user(conn, world.patient) as c:
            c.execute(
                "insert into public.chat_messages (thread_id, sender_id, body)"
                " values (%s, %s, 'me')",
                [thread, world.patient],
            )
        raise psycopg.Rollback()


def test_each_table_has_one_permissive_policy_per_role_and_action(
    conn: psycopg.Connection,
) -> None:
    rows = conn.execute(
        "select schemaname, tablename, cmd, r.role, count(*) from pg_policies"
        " cross join lateral unnest(roles) as r (role)"
        " where permissive = 'PERMISSIVE' and (schemaname, tablename) in ("
        "  ('public', 'chat_threads'), ('public', 'chat_thread_members'),"
        "  ('public', 'chat_messages'), ('public', 'notifications'),"
        "  ('public', 'ticket_timeline'), ('public', 'prescriptions'),"
        "  ('public', 'prescription_items'), ('realtime', 'messages'))"
        " group by 1, 2, 3, 4 having count(*) > 1"
    ).fetchall()
    assert rows == []
