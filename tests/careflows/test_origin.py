"""Tickets that come from tickets: which pairs, who creates them, for whom and with which
parties (create_ticket_from and plain inserts alike, CH008 otherwise); the origin's timeline;
a referral completing with its consultation; and who of the origin's parties sees what of the
derived ticket."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from tests.careflows.helpers import register, upload
from tests.helpers import as_user
from tests.tickets.factories import (
    World,
    make_world,
    raises_sqlstate,
    set_status,
    ticket_at,
    ticket_status,
    write_prescription,
)

FIELDS = (
    "id, ticket_type, status, patient_id, primary_provider_id, secondary_provider_id,"
    " required_provider_kind, origin_ticket_id, created_by, title"
)


def create_from(
    conn: psycopg.Connection,
    user: uuid.UUID,
    origin: uuid.UUID,
    ticket_type: str,
    secondary: uuid.UUID | None,
    fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    with as_user(conn, user) as c:
        cur = c.execute(
            f"select {FIELDS} from public.create_ticket_from(%s, %s, %s, %s)",
            [origin, ticket_type, secondary, json.dumps(fields or {})],
        )
        row = cur.fetchone()
        assert row is not None
        assert cur.description is not None
        return dict(zip([d.name for d in cur.description], row, strict=True))


def fulfiller_for(world: World, ticket_type: str) -> uuid.UUID:
    return world.fulfiller(ticket_type).provider


def thread_of(conn: psycopg.Connection, ticket: uuid.UUID) -> uuid.UUID:
    row = conn.execute(
        "select id from public.chat_threads where ticket_id = %s", [ticket]
    ).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize("ticket_type", ["prescription", "referral", "diagnostic"])
@pytest.mark.parametrize("origin_status", ["accepted", "in_progress"])
def test_the_accepting_gp_derives_follow_ups_from_a_consultation(
    conn: psycopg.Connection, ticket_type: str, origin_status: str
) -> None:
    world = make_world(conn)
    consultation = ticket_at(conn, world, "consultation", origin_status)
    derived = create_from(
        conn,
        world.gp.staff,
        consultation,
        ticket_type,
        fulfiller_for(world, ticket_type),
        {"title": "Follow-up", "urgency": "high"},
    )
    initial = "created"
    assert derived["status"] == initial
    assert (derived["patient_id"], derived["primary_provider_id"]) == (
        world.patient,
        world.gp.provider,
    )
    assert derived["origin_ticket_id"] == consultation
    assert derived["created_by"] == world.gp.staff
    assert derived["title"] == "Follow-up"
    recorded = conn.execute(
        "select details, actor_id, actor_kind from public.ticket_timeline"
        " where ticket_id = %s and event_type = 'derived_ticket_created'",
        [consultation],
    ).fetchall()
    assert recorded == [
        (
            {"ticket_id": str(derived["id"]), "ticket_type": ticket_type},
            world.gp.staff,
            "secondary",
        )
    ]


@pytest.mark.parametrize("origin_status", ["requested", "completed", "declined", "cancelled"])
def test_no_follow_up_from_a_consultation_not_accepted_or_in_progress(
    conn: psycopg.Connection, origin_status: str
) -> None:
    world = make_world(conn)
    consultation = ticket_at(conn, world, "consultation", origin_status)
    with raises_sqlstate("CH008"):
        create_from(conn, world.gp.owner, consultation, "prescription", world.pharmacy.provider)


def test_only_the_origins_fulfiller_derives_and_others_learn_nothing(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    consultation = ticket_at(conn, world, "consultation", "accepted")
    messages = set()
    attempts = [
        (user, consultation)
        for user in (
            world.patient, world.doctor.owner, world.pharmacy.staff, world.specialist.owner,
            world.other_patient,
        )
    ] + [(world.gp.owner, uuid.uuid4())]  # fmt: skip
    for user, origin in attempts:
        with pytest.raises(psycopg.Error) as caught:
            create_from(conn, user, origin, "diagnostic", world.diagnostics.provider)
        assert caught.value.sqlstate == "CH008"
        messages.add(str(caught.value).replace(str(origin), "<id>"))
    assert len(messages) == 1, messages


@pytest.mark.parametrize(
    ("origin_type", "origin_status", "ticket_type"),
    [
        ("consultation", "accepted", "consultation"),
        ("consultation", "accepted", "counseling"),
        ("referral", "accepted", "prescription"),
        ("referral", "accepted", "diagnostic"),
        ("referral", "accepted", "referral"),
        ("diagnostic", "scheduled", "diagnostic"),
        ("counseling", "claimed", "consultation"),
    ],
)
def test_no_other_pairs(
    conn: psycopg.Connection, origin_type: str, origin_status: str, ticket_type: str
) -> None:
    world = make_world(conn)
    origin = ticket_at(conn, world, origin_type, origin_status)
    fulfiller = world.fulfiller(origin_type)
    with raises_sqlstate("CH008", "does not come from"):
        create_from(
            conn,
            fulfiller.owner,
            origin,
            ticket_type,
            None if ticket_type == "consultation" else fulfiller_for(world, ticket_type),
        )


def test_the_specialist_opens_the_consultation_a_referral_asked_for(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    referral = ticket_at(conn, world, "referral", "sent")
    with raises_sqlstate("CH008", "accepted referral"):
        create_from(conn, world.specialist.owner, referral, "consultation", None)
    set_status(conn, referral, "accepted")
    with raises_sqlstate("CH008", "fulfilled by the specialist"):
        create_from(conn, world.specialist.owner, referral, "consultation", world.gp.provider)
    derived = create_from(conn, world.specialist.staff, referral, "consultation", None)
    assert derived["status"] == "requested"
    assert (
        derived["primary_provider_id"],
        derived["secondary_provider_id"],
        derived["required_provider_kind"],
    ) == (world.doctor.provider, world.specialist.provider, "specialist")
    # Only the accepting specialist, not the referring GP or the patient, opens it.
    for user in (world.doctor.owner, world.patient):
        with raises_sqlstate("CH008"):
            create_from(conn, user, referral, "consultation", None)


def test_a_consultation_from_a_referral_completes_the_referral_and_tells_the_gp(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    referral = ticket_at(conn, world, "referral", "accepted")
    consultation = create_from(conn, world.specialist.owner, referral, "consultation", None)["id"]
    for status in ("accepted", "in_progress", "completed"):
        with as_user(conn, world.specialist.owner) as c:
            c.execute(
                "update public.healthcare_tickets set status = %s where id = %s",
                [status, consultation],
            )
    assert ticket_status(conn, referral) == "completed"
    event = conn.execute(
        "select from_status, actor_id, actor_kind from public.ticket_timeline"
        " where ticket_id = %s and to_status = 'completed'",
        [referral],
    ).fetchone()
    assert event == ("accepted", None, "system")
    notified = {
        r
        for (r,) in conn.execute(
            "select recipient_id from public.notifications where ticket_id = %s"
            " and type = 'referral_completed'",
            [referral],
        )
    }
    assert world.doctor.members <= notified
    assert world.patient in notified


def test_a_specialists_consultation_leads_to_prescriptions_and_tests_not_referrals(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    referral = ticket_at(conn, world, "referral", "accepted")
    consultation = create_from(conn, world.specialist.owner, referral, "consultation", None)["id"]
    with as_user(conn, world.specialist.owner) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'accepted' where id = %s",
            [consultation],
        )
    rx = create_from(
        conn, world.specialist.owner, consultation, "prescription", world.pharmacy.provider
    )
    test = create_from(
        conn, world.specialist.staff, consultation, "diagnostic", world.diagnostics.provider
    )
    assert rx["primary_provider_id"] == test["primary_provider_id"] == world.specialist.provider
    with raises_sqlstate("CH008", "not to referrals"):
        create_from(
            conn, world.specialist.owner, consultation, "referral", world.specialist.provider
        )
    # The specialist writes and sends the prescription like a GP.
    prescription = write_prescription(
        conn, world.specialist.owner, world.pharmacy.provider, world.patient
    )
    with as_user(conn, world.specialist.owner) as c:
        c.execute(
            "update public.healthcare_tickets set prescription_id = %s, status = 'sent'"
            " where id = %s",
            [prescription, rx["id"]],
        )
    assert ticket_status(conn, rx["id"]) == "sent"


def test_plain_inserts_with_an_origin_obey_the_same_rules(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    consultation = ticket_at(conn, world, "consultation", "accepted")
    insert = (
        "insert into public.healthcare_tickets (ticket_type, patient_id, primary_provider_id,"
        " secondary_provider_id, origin_ticket_id) values (%s, %s, %s, %s, %s) returning id"
    )
    # A prescription from the consultation needs no appointment of its own.
    with as_user(conn, world.gp.owner) as c:
        row = c.execute(
            insert,
            ["prescription", world.patient, world.gp.provider, world.pharmacy.provider,
             consultation],
        ).fetchone()  # fmt: skip
    assert row is not None
    # Another patient; another practice as requester; another practice's member.
    with as_user(conn, world.gp.owner) as c, raises_sqlstate("CH008", "same patient"):
        c.execute(
            insert,
            ["diagnostic", world.other_patient, world.gp.provider, world.diagnostics.provider,
             consultation],
        )  # fmt: skip
    with as_user(conn, world.doctor.owner) as c, raises_sqlstate("CH008"):
        c.execute(
            insert,
            ["diagnostic", world.patient, world.doctor.provider, world.diagnostics.provider,
             consultation],
        )  # fmt: skip
    # The consultation a referral asked for has the referring practice as requester, which the
    # specialist may not write: create_ticket_from makes it.
    referral = ticket_at(conn, world, "referral", "accepted")
    with as_user(conn, world.specialist.owner) as c, raises_sqlstate("42501"):
        c.execute(
            insert,
            ["consultation", world.patient, world.doctor.provider, world.specialist.provider,
             referral],
        )  # fmt: skip
    # The system (a backfill) is held to the pairs too.
    with raises_sqlstate("CH008"):
        conn.execute(
            insert,
            ["counseling", world.patient, None, world.counselor.provider, consultation],
        )


def test_the_origin_of_a_ticket_never_changes_through_the_api(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    consultation = ticket_at(conn, world, "consultation", "accepted")
    other = ticket_at(conn, world, "consultation", "accepted")
    derived = create_from(
        conn, world.gp.owner, consultation, "diagnostic", world.diagnostics.provider
    )["id"]
    for value in (other, None):
        with as_user(conn, world.gp.owner) as c, raises_sqlstate("CH007"):
            c.execute(
                "update public.healthcare_tickets set origin_ticket_id = %s where id = %s",
                [value, derived],
            )
    referral = ticket_at(conn, world, "referral", "accepted")
    from_referral = create_from(conn, world.specialist.owner, referral, "consultation", None)
    other_specialist = conn.execute(
        "insert into public.providers (kind, name) values ('specialist', 'Elsewhere') returning id"
    ).fetchone()
    assert other_specialist is not None
    with as_user(conn, world.patient) as c, raises_sqlstate("CH007"):
        c.execute(
            "update public.healthcare_tickets set secondary_provider_id = %s where id = %s",
            [other_specialist[0], from_referral["id"]],
        )


def test_the_referring_gp_follows_the_derived_consultation_and_nobody_gains_another_thread(
    conn: psycopg.Connection,
) -> None:
    """The decision (README, Care flows): a derived ticket's parties are its own. The referring
    GP is the primary of the consultation a referral asked for, so reads its status, outcome
    and thread; the specialist never reads the GP's consultation the referral came from, nor the
    pharmacy or the centre the consultation their follow-up came from."""
    world = make_world(conn)
    gp_consultation = ticket_at(conn, world, "consultation", "accepted")
    with as_user(conn, world.gp.owner) as c:
        c.execute(
            "insert into public.chat_messages (thread_id, body) values (%s, 'private GP note')",
            [thread_of(conn, gp_consultation)],
        )
    referral = create_from(
        conn, world.gp.owner, gp_consultation, "referral", world.specialist.provider
    )["id"]
    diagnostic = create_from(
        conn, world.gp.owner, gp_consultation, "diagnostic", world.diagnostics.provider
    )["id"]
    set_status(conn, referral, "accepted")
    set_status(conn, diagnostic, "sent")
    specialist_consultation = create_from(
        conn, world.specialist.owner, referral, "consultation", None
    )["id"]
    with as_user(conn, world.specialist.owner) as c:
        c.execute(
            "insert into public.chat_messages (thread_id, body) values (%s, 'specialist here')",
            [thread_of(conn, specialist_consultation)],
        )
        for status in ("accepted", "in_progress"):
            c.execute(
                "update public.healthcare_tickets set status = %s where id = %s",
                [status, specialist_consultation],
            )
    # The outcome: the specialist's letter among the consultation's documents, then completed.
    letter = f"{specialist_consultation}/documents/letter.pdf"
    upload(conn, world.specialist.owner, letter)
    register(conn, world.specialist.owner, letter)
    with as_user(conn, world.specialist.owner) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'completed' where id = %s",
            [specialist_consultation],
        )

    def visible(user: uuid.UUID, ticket: uuid.UUID) -> dict[str, Any]:
        with as_user(conn, user) as c:
            row = c.execute(
                "select t.status, array(select a.object_name from public.ticket_attachments a"
                " where a.ticket_id = t.id) from public.healthcare_tickets t where t.id = %s",
                [ticket],
            ).fetchone()
            bodies = [
                b
                for (b,) in c.execute(
                    "select m.body from public.chat_messages m join public.chat_threads th"
                    " on th.id = m.thread_id where th.ticket_id = %s",
                    [ticket],
                )
            ]
            timeline = c.execute(
                "select count(*) from public.ticket_timeline where ticket_id = %s", [ticket]
            ).fetchone()
        assert timeline is not None
        return {"row": row, "messages": bodies, "timeline": timeline[0] > 0}

    # The referring GP (the practice that derived the referral, so its requester) is the
    # requester of the consultation the referral asked for: its status, outcome and thread.
    assert conn.execute(
        "select primary_provider_id from public.healthcare_tickets where id = %s",
        [specialist_consultation],
    ).fetchone() == (world.gp.provider,)
    seen = visible(world.gp.owner, specialist_consultation)
    assert seen["row"] is not None
    assert seen["row"][0] == "completed"
    assert seen["row"][1] == [letter]
    assert seen["messages"] == ["specialist here"]
    # The specialist and the centre never gain the GP's own consultation.
    for user in (world.specialist.owner, world.specialist.staff, world.diagnostics.staff):
        assert visible(user, gp_consultation) == {"row": None, "messages": [], "timeline": False}
    # The patient sees the whole chain.
    for ticket in (gp_consultation, referral, diagnostic, specialist_consultation):
        assert visible(world.patient, ticket)["row"] is not None


def test_a_backfill_completing_a_referrals_consultation_tells_and_broadcasts_nothing(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    referral = ticket_at(conn, world, "referral", "accepted")
    consultation = create_from(conn, world.specialist.owner, referral, "consultation", None)["id"]
    set_status(conn, consultation, "accepted")
    notes = conn.execute("select count(*) from public.notifications").fetchone()
    sent = conn.execute("select count(*) from realtime.messages").fetchone()
    with conn.transaction():
        conn.execute("set local app.source = 'backfill'")
        set_status(conn, consultation, "completed")
    assert ticket_status(conn, referral) == "completed"
    assert conn.execute("select count(*) from public.notifications").fetchone() == notes
    assert conn.execute("select count(*) from realtime.messages").fetchone() == sent


def test_erasing_an_origin_keeps_its_follow_ups_without_the_link(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    consultation = ticket_at(conn, world, "consultation", "accepted")
    derived = create_from(
        conn, world.gp.owner, consultation, "diagnostic", world.diagnostics.provider
    )["id"]
    conn.execute(
        "select private.erase_ticket(%s, 'erasure request #1', 'patient by email')",
        [consultation],
    )
    assert conn.execute(
        "select origin_ticket_id from public.healthcare_tickets where id = %s", [derived]
    ).fetchone() == (None,)
