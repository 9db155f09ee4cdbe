"""The outbox: rules as data, deliveries queued by triggers in the change's transaction, each
status template sent through the Twilio double, dedupe, backfill, PHI, consent."""

from __future__ import annotations

import psycopg
import pytest

from app.jobs.messaging import Sender
from tests.helpers import as_user
from tests.messaging.conftest import consenting_patient, deliveries, run_sender
from tests.messaging.twilio_double import TwilioDouble
from tests.tickets.factories import make_world, raises_sqlstate, set_status, ticket_at

PHONE = "+15551230001"
PATHS = {
    "sent": ["sent"],
    "received": ["sent", "received"],
    "processing": ["sent", "received", "processing"],
    "ready": ["sent", "received", "processing", "ready"],
    "shipped": ["sent", "received", "processing", "shipped"],
    "out_for_delivery": ["sent", "received", "processing", "shipped", "out_for_delivery"],
    "delivered": ["sent", "received", "processing", "shipped", "delivered"],
    "completed": ["sent", "received", "processing", "ready", "completed"],
    "cancelled": ["sent", "cancelled"],
    "failed": ["sent", "received", "processing", "failed"],
}
EXPECTED = {
    "sent": "your prescription was sent to",
    "received": "has received your order",
    "processing": "is preparing your order",
    "ready": "ready for pickup",
    "shipped": "tracking 1Z999AA1",
    "out_for_delivery": "out for delivery today",
    "delivered": "How did we do?",
    "completed": "Thanks for collecting",
    "cancelled": "+18005550199",
    "failed": "+18005550199",
}


def test_default_rules_are_seeded_without_phi_in_phone_texts(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select event, status, sms_template from public.notification_rules where is_active"
    ).fetchall()
    statuses = {r[1] for r in rows if r[0] == "ticket_status"}
    assert statuses == set(PATHS)
    assert {r[0] for r in rows} >= {
        "reservation_confirmed",
        "reservation_cancelled",
        "reservation_reminder_24h",
        "reservation_reminder_2h",
        "reservation_rejected",
        "reservation_request_expired",
    }
    for _event, _status, template in rows:
        for phi in ("{medication}", "{service_name}", "{practitioner_name}"):
            assert phi not in template


@pytest.mark.parametrize("status", list(PATHS))
def test_each_status_template_reaches_the_patient_by_sms(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender, status: str
) -> None:
    world = make_world(conn)
    consenting_patient(conn, world.patient, PHONE)
    ticket = ticket_at(conn, world, "prescription", "created")
    for step in PATHS[status]:
        set_status(conn, ticket, step)
    # Rendered at send time: tracking written after the status change still makes the text.
    conn.execute(
        "update public.prescription_tracking set tracking_number = '1Z999AA1', carrier = 'UPS',"
        " tracking_url = 'https://ups.example/1Z999AA1' where ticket_id = %s",
        [ticket],
    )
    run_sender(sender, conn)
    rows = deliveries(conn, ticket_id=ticket, channel="sms")
    sids = {r["provider_message_id"] for r in rows}
    texts = [m["body"] for m in double.sent_to(PHONE) if m["sid"] in sids]
    assert len(texts) == len(PATHS[status])
    assert any(EXPECTED[status] in text for text in texts)
    for text in texts:
        assert "Amoxicillin" not in text  # PHI never in an SMS by default
    assert {r["status"] for r in rows} == {"sent"}
    assert all(r["provider_message_id"].startswith("SM") for r in rows)


def test_chat_delivery_posts_a_system_message_with_the_medication(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    consenting_patient(conn, world.patient, PHONE)
    ticket = ticket_at(conn, world, "prescription", "sent")
    before = conn.execute("select count(*) from public.notifications").fetchone()
    conn.execute("select private.deliver_chat_notifications(10, '', '')")
    row = conn.execute(
        "select m.body, m.sender_id from public.chat_messages m join public.chat_threads t"
        " on t.id = m.thread_id where t.ticket_id = %s and m.kind = 'system'",
        [ticket],
    ).fetchone()
    assert row is not None
    assert "Amoxicillin" in row[0]
    assert row[1] is None
    # A system message raises no "New message".
    after = conn.execute("select count(*) from public.notifications").fetchone()
    assert after == before
    assert deliveries(conn, ticket_id=ticket, channel="chat")[0]["status"] == "sent"


def test_the_same_event_twice_is_one_delivery(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    consenting_patient(conn, world.patient, PHONE)
    ticket = ticket_at(conn, world, "prescription", "sent")
    again = conn.execute(
        "select private.queue_notifications('ticket_status', %s, null, null, null, null)",
        [ticket],
    ).fetchone()
    assert again == (0,)
    assert len(deliveries(conn, ticket_id=ticket, channel="sms")) == 1


def test_backfill_changes_queue_nothing(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    consenting_patient(conn, world.patient, PHONE)
    ticket = ticket_at(conn, world, "prescription", "created")
    with conn.transaction():
        conn.execute("set local app.source = 'backfill'")
        set_status(conn, ticket, "sent")
    assert deliveries(conn, ticket_id=ticket) == []


def test_without_consent_the_delivery_is_suppressed_with_its_reason(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    consenting_patient(conn, world.patient, PHONE)
    conn.execute("update public.profile set sms_opt_in = false where id = %s", [world.patient])
    ticket = ticket_at(conn, world, "prescription", "sent")
    [row] = deliveries(conn, ticket_id=ticket, channel="sms")
    assert (row["status"], row["suppressed_reason"]) == ("suppressed", "no_consent")
    conn.execute(
        "update public.profile set sms_opt_in = true, phone = null where id = %s", [world.patient]
    )
    set_status(conn, ticket, "received")
    rows = deliveries(conn, ticket_id=ticket, channel="sms")
    assert rows[-1]["suppressed_reason"] == "no_phone"


def test_the_actor_is_not_messaged_and_recipients_read_only_their_rows(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    consenting_patient(conn, world.patient, PHONE)
    ticket = ticket_at(conn, world, "prescription", "sent")
    with as_user(conn, world.patient) as c:
        mine = c.execute("select count(*) from public.notification_deliveries").fetchone()
    with as_user(conn, world.other_patient) as c:
        theirs = c.execute("select count(*) from public.notification_deliveries").fetchone()
    with as_user(conn, world.admin) as c:
        everything = c.execute("select count(*) from public.notification_deliveries").fetchone()
    assert mine is not None
    assert mine[0] >= 2
    assert theirs == (0,)
    assert everything is not None
    assert everything[0] >= mine[0]
    # The patient cancels it themselves: nobody texts them about their own action.
    count = len(deliveries(conn, ticket_id=ticket))
    conn.execute(
        "select private.queue_notifications('ticket_status', %s, null, null, null, null)", [ticket]
    )
    assert len(deliveries(conn, ticket_id=ticket)) == count


def test_templates_are_validated_when_saved(conn: psycopg.Connection) -> None:
    with raises_sqlstate("22023", "{diagnosis}"):
        conn.execute(
            "insert into public.notification_rules (name, event, channels, sms_template)"
            " values ('x', 'reservation_confirmed', '{sms}', 'You have {diagnosis}')"
        )
    with raises_sqlstate("22023", "segments"):
        conn.execute(
            "insert into public.notification_rules (name, event, channels, sms_template)"
            " values ('y', 'reservation_confirmed', '{sms}', %s)",
            ["Hello {patient_first_name}. " + "ł" * 200],
        )
    with raises_sqlstate("22023", "quiet"):
        conn.execute(
            "insert into public.notification_rules (name, event, channels, sms_template,"
            " quiet_hours) values ('z', 'reservation_confirmed', '{sms}', 'Hi', false)"
        )


def test_only_admins_write_rules_and_allow_phi(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    with as_user(conn, world.patient) as c:
        rows = c.execute(
            "update public.notification_rules set allow_phi = true returning id"
        ).fetchall()
    assert rows == []
    with as_user(conn, world.admin) as c:
        c.execute(
            "update public.notification_rules set allow_phi = true"
            " where name = 'Prescription sent to the pharmacy'"
        )


def test_a_phi_placeholder_renders_in_sms_only_when_an_admin_allowed_it(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender
) -> None:
    world = make_world(conn)
    consenting_patient(conn, world.patient, PHONE)
    conn.execute(
        "update public.notification_rules set sms_template = 'Sent: {medication}.'"
        " where name = 'Prescription sent to the pharmacy'"
    )
    first = ticket_at(conn, world, "prescription", "sent")
    run_sender(sender, conn)
    conn.execute(
        "update public.notification_rules set allow_phi = true"
        " where name = 'Prescription sent to the pharmacy'"
    )
    second = ticket_at(conn, world, "prescription", "sent")
    run_sender(sender, conn)
    bodies = {
        r["ticket_id"]: r["body"]
        for r in deliveries(conn, channel="sms")
        if r["ticket_id"] in (first, second)
    }
    assert bodies[first] == "Sent:."
    assert bodies[second] == "Sent: Amoxicillin 500 mg."


def test_an_unverified_booking_phone_gets_a_few_messages_a_day(conn: psycopg.Connection) -> None:
    from tests.scheduling.factories import create_practitioner, create_service, create_slot

    practitioner = create_practitioner(conn, tz="Europe/Madrid")
    service = create_service(conn, practitioner)
    reasons = []
    for _ in range(4):
        slot = create_slot(conn, practitioner, service)
        request = conn.execute(
            "insert into public.reservation_request (slot_id, patient_name, patient_phone,"
            " requested_time) select %s, 'Anon Person', '+15557770002', start_time"
            " from public.time_slot where id = %s returning id",
            [slot, slot],
        ).fetchone()
        assert request is not None
        conn.execute("select public.reject_reservation_request(%s, 'busy')", [request[0]])
        [row] = deliveries(conn, request_id=request[0])
        reasons.append(row["suppressed_reason"])
    assert reasons == [None, None, None, "daily_limit"]
