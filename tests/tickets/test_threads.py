"""Threads, members, messages, notifications, timeline, claiming and the doctor's entry point."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.helpers import add_member, as_service, as_user, create_provider, create_user
from tests.tickets.factories import (
    attach_file,
    make_reservation,
    make_world,
    raises_sqlstate,
    set_status,
    ticket_at,
    ticket_status,
    write_prescription,
)


def thread_of(conn: psycopg.Connection, ticket: uuid.UUID) -> uuid.UUID:
    row = conn.execute(
        "select id from public.chat_threads where ticket_id = %s", [ticket]
    ).fetchone()
    assert row is not None
    return row[0]


def members(conn: psycopg.Connection, ticket: uuid.UUID) -> dict[uuid.UUID, str]:
    return dict(
        conn.execute(
            "select m.profile_id, m.role from public.chat_thread_members as m"
            " join public.chat_threads as th on th.id = m.thread_id where th.ticket_id = %s",
            [ticket],
        ).fetchall()
    )


def notified(conn: psycopg.Connection, ticket: uuid.UUID | None, kind: str) -> set[uuid.UUID]:
    return {
        r[0]
        for r in conn.execute(
            "select recipient_id from public.notifications where type = %s"
            " and ticket_id is not distinct from %s",
            [kind, ticket],
        ).fetchall()
    }


def test_doctor_gets_one_ticket_with_a_legacy_compatible_thread(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    appointment = make_reservation(conn, world.doctor.owner, world.patient)
    with as_user(conn, world.doctor.owner) as c:
        first = c.execute(
            "select id, patient_id, primary_provider_id, status, created_by"
            " from public.get_or_create_prescription_ticket(%s, %s)",
            [appointment, world.pharmacy.provider],
        ).fetchone()
        again = c.execute(
            "select id from public.get_or_create_prescription_ticket(%s, %s)",
            [appointment, world.pharmacy.provider],
        ).fetchone()
    assert first is not None
    assert again is not None
    ticket = first[0]
    assert first[1:] == (world.patient, world.doctor.provider, "created", world.doctor.owner)
    assert again[0] == ticket
    thread = conn.execute(
        "select order_id, order_type, metadata from public.chat_threads where ticket_id = %s",
        [ticket],
    ).fetchone()
    assert thread == (
        appointment,
        "prescription",
        {"ticket_id": str(ticket), "target_id": str(world.pharmacy.provider)},
    )
    with as_user(conn, world.doctor.owner) as c:
        rx = c.execute(
            "insert into public.prescriptions (doctor_id, pharmacy_id, patient_id,"
            " appointment_id, medications) values (%s, %s, %s, %s, '[]') returning id",
            [world.doctor.owner, world.pharmacy.provider, world.patient, appointment],
        ).fetchone()
        assert rx is not None
        c.execute(
            "update public.healthcare_tickets set prescription_id = %s, status = 'sent'"
            " where id = %s",
            [rx[0], ticket],
        )
        # The frontend's optional step overwrites the metadata; the lookup keys stay.
        c.execute(
            "update public.chat_threads set metadata = %s where ticket_id = %s",
            [psycopg.types.json.Jsonb({"prescription_id": str(rx[0]), "note": "x"}), ticket],
        )
    # The pharmacy's legacy lookup finds the new thread.
    with as_user(conn, world.pharmacy.staff) as c:
        found = c.execute(
            "select id, metadata ->> 'prescription_id' from public.chat_threads"
            " where order_id = %s and metadata ->> 'target_id' = %s",
            [appointment, str(world.pharmacy.provider)],
        ).fetchall()
    assert found == [(thread_of(conn, ticket), str(rx[0]))]
    # Cancelled, a new one is made for the same appointment and pharmacy.
    set_status(conn, ticket, "cancelled")
    with as_user(conn, world.doctor.owner) as c:
        fresh = c.execute(
            "select id from public.get_or_create_prescription_ticket(%s, %s)",
            [appointment, world.pharmacy.provider],
        ).fetchone()
    assert fresh is not None
    assert fresh[0] != ticket


def test_get_or_create_refuses_strangers_and_non_pharmacies(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    appointment = make_reservation(conn, world.doctor.owner, world.patient)
    for user, target, code in (
        (world.gp.owner, world.pharmacy.provider, "CH008"),  # not the practitioner's practice
        (world.patient, world.pharmacy.provider, "CH008"),
        (world.doctor.owner, world.specialist.provider, "CH008"),  # not a pharmacy
    ):
        with as_user(conn, user) as c, raises_sqlstate(code):
            c.execute(
                "select public.get_or_create_prescription_ticket(%s, %s)", [appointment, target]
            )
    # An unknown appointment gets the same answer as someone else's: existence is not told.
    with as_user(conn, world.doctor.owner) as c, raises_sqlstate("CH008"):
        c.execute(
            "select public.get_or_create_prescription_ticket(%s, %s)",
            [uuid.uuid4(), world.pharmacy.provider],
        )


def test_thread_members_follow_the_ticket_parties(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription")
    assert members(conn, ticket) == {
        world.patient: "patient",
        world.doctor.owner: "primary",
        world.doctor.staff: "primary",
    }
    with as_user(conn, world.doctor.staff) as c:
        c.execute("update public.healthcare_tickets set status = 'sent' where id = %s", [ticket])
    assert members(conn, ticket) == {
        world.patient: "patient",
        world.doctor.owner: "primary",
        world.doctor.staff: "primary",
        world.pharmacy.owner: "secondary",
        world.pharmacy.staff: "secondary",
    }
    # A newcomer joins by accepting the owner's invitation.
    newcomer = create_user(conn, "pharmacist")
    with as_user(conn, world.pharmacy.owner) as c:
        (invitation,) = c.execute(
            "select id from public.invite_provider_member(%s, %s, 'staff')",
            [world.pharmacy.provider, newcomer],
        ).fetchone()
    with as_user(conn, newcomer) as c:
        c.execute("select public.accept_provider_invitation(%s)", [invitation])
    assert members(conn, ticket)[newcomer] == "secondary"
    with as_user(conn, world.pharmacy.owner) as c:
        c.execute(
            "delete from public.provider_members where provider_id = %s and profile_id = %s",
            [world.pharmacy.provider, world.pharmacy.staff],
        )
    assert world.pharmacy.staff not in members(conn, ticket)
    with as_user(conn, world.pharmacy.staff) as c:
        assert c.execute("select id from public.chat_messages").fetchall() == []

    # The requester picks another fulfiller while the ticket is a draft: members follow.
    diagnostic = ticket_at(conn, world, "diagnostic")
    other_centre = create_provider(conn, "diagnostics_center", owner=create_user(conn))
    with as_user(conn, world.doctor.owner) as c:
        c.execute(
            "update public.healthcare_tickets set secondary_provider_id = %s where id = %s",
            [other_centre, diagnostic],
        )
    roles = members(conn, diagnostic)
    assert world.diagnostics.staff not in roles
    # A drafted diagnostic order: its centre joins the thread only once it is sent.
    assert sorted(roles.values()) == ["patient", "primary", "primary"]
    set_status(conn, diagnostic, "sent")
    assert sorted(members(conn, diagnostic).values()) == [
        "patient",
        "primary",
        "primary",
        "secondary",
    ]


def test_prescription_thread_is_closed_until_the_prescription_is_attached(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", with_prescription=False)
    thread = thread_of(conn, ticket)
    post = "insert into public.chat_messages (thread_id, body) values (%s, 'hello')"
    for user in (world.doctor.owner, world.patient):
        with as_user(conn, user) as c, raises_sqlstate("CH004", "attach a prescription"):
            c.execute(post, [thread])
    with raises_sqlstate("CH004"):
        conn.execute(post, [thread])
    rx = write_prescription(conn, world.doctor.owner, world.pharmacy.provider, world.patient)
    with as_user(conn, world.doctor.owner) as c:
        c.execute(
            "update public.healthcare_tickets set prescription_id = %s where id = %s", [rx, ticket]
        )
        row = c.execute(post + " returning sender_id", [thread]).fetchone()
    assert row == (world.doctor.owner,)


def test_messages_are_posted_as_the_caller(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "consultation")
    thread = thread_of(conn, ticket)
    with as_user(conn, world.patient) as c, raises_sqlstate("CH008", "not you"):
        c.execute(
            "insert into public.chat_messages (thread_id, sender_id, body) values (%s, %s, 'x')",
            [thread, world.gp.owner],
        )
    with as_user(conn, world.patient) as c, raises_sqlstate("CH008", "system"):
        c.execute(
            "insert into public.chat_messages (thread_id, body, kind) values (%s, 'x', 'system')",
            [thread],
        )
    with as_user(conn, world.gp.staff) as c:
        sender = c.execute(
            "insert into public.chat_messages (thread_id, body) values (%s, 'hi')"
            " returning sender_id",
            [thread],
        ).fetchone()
    assert sender == (world.gp.staff,)


def test_notifications_reach_exactly_the_right_recipients(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription")
    with as_user(conn, world.doctor.staff) as c:
        c.execute("update public.healthcare_tickets set status = 'sent' where id = %s", [ticket])
    assert notified(conn, ticket, "prescription_sent") == {world.patient} | world.pharmacy.members
    with as_user(conn, world.pharmacy.staff) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'received' where id = %s", [ticket]
        )
    assert notified(conn, ticket, "prescription_received") == {world.patient} | (
        world.doctor.members
    )
    with conn.transaction():
        conn.execute("select set_config('app.source', 'lifefile', true)")
        set_status(conn, ticket, "shipped")
    assert notified(conn, ticket, "prescription_shipped") == {world.patient} | (
        world.doctor.members
    )
    with as_user(conn, world.patient) as c:
        c.execute(
            "insert into public.chat_messages (thread_id, body) values (%s, 'when?')",
            [thread_of(conn, ticket)],
        )
    assert notified(conn, ticket, "chat_message") == world.doctor.members | world.pharmacy.members

    # Consultation to the pool: members of active doctor providers, not inactive ones.
    create_provider(conn, "doctor", is_active=False, owner=create_user(conn, "doctor"))
    with as_user(conn, world.patient) as c:
        row = c.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id, title)"
            " values ('consultation', %s, 'Cough') returning id",
            [world.patient],
        ).fetchone()
    assert row is not None
    consultation = row[0]
    assert notified(conn, consultation, "consultation_requested") == (
        world.doctor.members | world.gp.members
    )
    with as_user(conn, world.gp.owner) as c:
        c.execute("select public.claim_ticket(%s, %s)", [consultation, world.gp.provider])
    assert notified(conn, consultation, "consultation_accepted") == {world.patient}

    # A crisis reaches every counsellor and admin.
    role_only = create_user(conn, "counselor")
    with as_user(conn, world.patient) as c:
        row = c.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id, urgency,"
            " session_mode, category) values ('counseling', %s, 'crisis', 'video', 'stress')"
            " returning id",
            [world.patient],
        ).fetchone()
    assert row is not None
    crisis = row[0]
    assert notified(conn, crisis, "counseling_crisis") == (
        world.counselor.members | world.other_counselor.members | {role_only, world.admin}
    )
    with as_user(conn, world.other_counselor.owner) as c:
        c.execute("select public.claim_ticket(%s, %s)", [crisis, world.other_counselor.provider])
        c.execute(
            "update public.healthcare_tickets set status = 'scheduled', scheduled_time = now(),"
            " meeting_link = 'https://meet.example/c' where id = %s",
            [crisis],
        )
    assert notified(conn, crisis, "counseling_claimed") == {world.patient}
    assert notified(conn, crisis, "counseling_scheduled") == {world.patient}

    # Diagnostic results reach the patient and the doctor.
    diagnostic = ticket_at(conn, world, "diagnostic", "in_progress")
    attach_file(conn, diagnostic, "results", world.diagnostics.staff)  # results need a file
    with as_user(conn, world.diagnostics.owner) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'results_ready' where id = %s",
            [diagnostic],
        )
    assert notified(conn, diagnostic, "diagnostic_results_ready") == {world.patient} | (
        world.doctor.members
    )

    # A referral sent to the pool reaches the specialists that may claim it.
    referral = ticket_at(conn, world, "referral", open_for_claim=True)
    with as_user(conn, world.doctor.owner) as c:
        c.execute("update public.healthcare_tickets set status = 'sent' where id = %s", [referral])
    assert notified(conn, referral, "referral_open") == world.specialist.members
    # The requester's colleagues are the acting side: only the patient hears of it.
    assert notified(conn, referral, "referral_sent") == {world.patient}

    # History written by the backfill notifies no one.
    before = conn.execute("select count(*) from public.notifications").fetchone()
    with conn.transaction():
        conn.execute("select set_config('app.source', 'backfill', true)")
        backfilled = ticket_at(conn, world, "consultation")
        set_status(conn, backfilled, "completed")
    assert conn.execute("select count(*) from public.notifications").fetchone() == before
    events = conn.execute(
        "select event_type, source from public.ticket_timeline where ticket_id = %s"
        " order by created_at",
        [backfilled],
    ).fetchall()
    assert events == [("backfilled", "backfill"), ("status_changed", "backfill")]


def test_timeline_is_append_only_for_every_role(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "referral", "sent")
    for statement in (
        "update public.ticket_timeline set source = 'forged'",
        "delete from public.ticket_timeline",
        "insert into public.ticket_timeline (ticket_id, event_type, actor_kind, source)"
        f" values ('{ticket}', 'forged', 'system', 'app')",
    ):
        with as_service(conn) as c, raises_sqlstate("42501"):
            c.execute(statement)
        for user in (world.admin, world.doctor.owner, world.patient):
            with as_user(conn, user) as c, raises_sqlstate("42501"):
                c.execute(statement)
    for statement in (
        "update public.ticket_timeline set source = 'forged'",
        "delete from public.ticket_timeline",
        "truncate public.ticket_timeline",
    ):
        with raises_sqlstate("42501", "append-only"):
            conn.execute(statement)
    # Rows go only with their ticket.
    conn.execute("delete from public.healthcare_tickets where id = %s", [ticket])
    left = conn.execute(
        "select count(*) from public.ticket_timeline where ticket_id = %s", [ticket]
    ).fetchone()
    assert left == (0,)


def test_claiming_is_for_eligible_providers_of_open_tickets(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "counseling", open_for_claim=True, category="stress")
    # world.counselor lists only anxiety; world.other_counselor takes stress.
    with as_user(conn, world.counselor.owner) as c:
        assert c.execute("select id from public.healthcare_tickets").fetchall() == []
        with raises_sqlstate("CH008", "not open"):
            c.execute("select public.claim_ticket(%s, %s)", [ticket, world.counselor.provider])
    with as_user(conn, world.pharmacy.owner) as c, raises_sqlstate("CH008", "do not act"):
        c.execute("select public.claim_ticket(%s, %s)", [ticket, world.other_counselor.provider])
    with as_user(conn, world.other_counselor.staff) as c:
        assert c.execute("select id from public.healthcare_tickets").fetchall() == [(ticket,)]
        c.execute("select public.claim_ticket(%s, %s)", [ticket, world.other_counselor.provider])
    assert ticket_status(conn, ticket) == "claimed"
    assert world.other_counselor.staff in members(conn, ticket)
    # A claimed ticket is no longer shown to the pool.
    rival = create_user(conn, "counselor")
    rival_provider = create_provider(conn, "counselor", owner=rival)
    with as_user(conn, rival) as c:
        assert c.execute("select id from public.healthcare_tickets").fetchall() == []
        with raises_sqlstate("CH003"):
            c.execute("select public.claim_ticket(%s, %s)", [ticket, rival_provider])
    draft = ticket_at(conn, world, "referral", open_for_claim=True)  # 'created': not open yet
    with as_user(conn, world.specialist.owner) as c, raises_sqlstate("CH008", "not open"):
        c.execute("select public.claim_ticket(%s, %s)", [draft, world.specialist.provider])
    with raises_sqlstate("42501"):
        conn.execute("select public.claim_ticket(%s, %s)", [draft, world.specialist.provider])


def test_sent_prescription_is_frozen_but_keeps_its_order_numbers_writable(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", "sent")
    rx = conn.execute(
        "select prescription_id from public.healthcare_tickets where id = %s", [ticket]
    ).fetchone()
    assert rx is not None
    with as_user(conn, world.doctor.owner) as c:
        c.execute(
            "update public.prescriptions set external_order_id = 'LF-1', rx_number = 'RX-9'"
            " where id = %s",
            [rx[0]],
        )
    for column, value in (("medications", "'[]'"), ("notes", "'x'"), ("patient_id", "null")):
        with as_user(conn, world.doctor.owner) as c, raises_sqlstate("CH007", "frozen"):
            c.execute(
                f"update public.prescriptions set {column} = {value} where id = %s",
                [rx[0]],
            )
        with raises_sqlstate("CH007", "frozen"):
            conn.execute(
                f"update public.prescriptions set {column} = {value} where id = %s",
                [rx[0]],
            )


@pytest.mark.parametrize(
    ("table_a", "table_b"),
    [("healthcare_tickets", "prescriptions"), ("chat_threads", "healthcare_tickets")],
)
def test_postgrest_embedding_has_exactly_one_foreign_key(
    conn: psycopg.Connection, table_a: str, table_b: str
) -> None:
    count = conn.execute(
        "select count(*) from pg_constraint where contype = 'f' and ("
        " (conrelid = %(a)s::regclass and confrelid = %(b)s::regclass)"
        " or (conrelid = %(b)s::regclass and confrelid = %(a)s::regclass))",
        {"a": f"public.{table_a}", "b": f"public.{table_b}"},
    ).fetchone()
    assert count == (1,)


def test_pharmacy_inbox_in_the_frontend_shape(conn: psycopg.Connection) -> None:
    """healthcare_tickets?select=*,prescription:prescriptions(*),thread:chat_threads(id,title,
    updated_at)&secondary_provider_id=eq.X&ticket_type=eq.prescription, as PostgREST runs it."""
    world = make_world(conn)
    draft = ticket_at(conn, world, "prescription")
    sent = ticket_at(conn, world, "prescription", "sent")
    add_member(conn, world.pharmacy.provider, create_user(conn, "pharmacist"))
    # Both are addressed to this pharmacy: only RLS keeps the draft out of its inbox.
    addressed = conn.execute(
        "select id from public.healthcare_tickets where secondary_provider_id = %s"
        " and ticket_type = 'prescription'",
        [world.pharmacy.provider],
    ).fetchall()
    assert {r[0] for r in addressed} == {draft, sent}
    with as_user(conn, world.pharmacy.staff) as c:
        rows = c.execute(
            "select t.id, p.id is not null, th.id is not null"
            " from public.healthcare_tickets as t"
            " left join lateral (select * from public.prescriptions as p"
            "   where p.id = t.prescription_id) as p on true"
            " left join lateral (select th.id, th.title, th.updated_at"
            "   from public.chat_threads as th where th.ticket_id = t.id) as th on true"
            " where t.secondary_provider_id = %s and t.ticket_type = 'prescription'"
            " order by t.created_at desc",
            [world.pharmacy.provider],
        ).fetchall()
    assert rows == [(sent, True, True)]


def test_ticket_tables_are_published_for_realtime(conn: psycopg.Connection) -> None:
    published = {
        r[0]
        for r in conn.execute(
            "select tablename from pg_publication_tables"
            " where pubname = 'supabase_realtime' and schemaname = 'public'"
        ).fetchall()
    }
    assert {
        "healthcare_tickets",
        "chat_threads",
        "chat_messages",
        "notifications",
        "ticket_timeline",
    } <= published


def test_one_update_makes_one_timeline_row_with_the_columns_it_changed(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "counseling", "claimed")
    before = conn.execute(
        "select updated_at from public.healthcare_tickets where id = %s", [ticket]
    ).fetchone()
    with as_user(conn, world.counselor.staff) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'scheduled',"
            " scheduled_time = now() + interval '2 days',"
            " meeting_link = 'https://meet.example/z' where id = %s",
            [ticket],
        )
    rows = conn.execute(
        "select event_type, from_status, to_status, actor_kind, details"
        " from public.ticket_timeline where ticket_id = %s and to_status = 'scheduled'",
        [ticket],
    ).fetchall()
    scheduled_time = conn.execute(
        "select to_jsonb(scheduled_time) from public.healthcare_tickets where id = %s", [ticket]
    ).fetchone()
    assert scheduled_time is not None
    assert rows == [
        (
            "status_changed",
            "claimed",
            "scheduled",
            "secondary",
            {
                "columns": ["meeting_link", "scheduled_time"],
                "changes": {
                    "meeting_link": {"old": None, "new": "https://meet.example/z"},
                    "scheduled_time": {"old": None, "new": scheduled_time[0]},
                },
            },
        )
    ]
    with as_user(conn, world.patient) as c:
        c.execute(
            "update public.healthcare_tickets set description = 'Evenings are better'"
            " where id = %s",
            [ticket],
        )
    last = conn.execute(
        "select event_type, actor_kind, details from public.ticket_timeline"
        " where ticket_id = %s order by created_at desc limit 1",
        [ticket],
    ).fetchone()
    # The timeline keeps the old and the new text, not only the column's name.
    assert last == (
        "updated",
        "patient",
        {
            "columns": ["description"],
            "changes": {"description": {"old": None, "new": "Evenings are better"}},
        },
    )
    after = conn.execute(
        "select updated_at from public.healthcare_tickets where id = %s", [ticket]
    ).fetchone()
    assert before is not None
    assert after is not None
    assert after[0] > before[0]


def test_changes_made_in_one_transaction_keep_their_order(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", "sent")
    with conn.transaction():
        for status in ("received", "processing", "ready"):
            set_status(conn, ticket, status)
    timeline = conn.execute(
        "select to_status from public.ticket_timeline"
        " where ticket_id = %s and event_type = 'status_changed'"
        " order by created_at, to_status",
        [ticket],
    ).fetchall()
    assert [status for (status,) in timeline] == ["sent", "received", "processing", "ready"]
    notified = conn.execute(
        "select data ->> 'status' from public.notifications"
        " where ticket_id = %s and recipient_id = %s order by created_at",
        [ticket, world.patient],
    ).fetchall()
    statuses = [status for (status,) in notified if status is not None]
    assert statuses[-3:] == ["received", "processing", "ready"]
