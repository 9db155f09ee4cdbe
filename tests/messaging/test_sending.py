"""Delivery through Twilio (the double, through the real twilio client): failures classified
by error code, no blind duplicate after a crash, three workers sending each message once, the
shared send rate, the worker without credentials and catching up when they appear."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest

from app.config import Settings
from app.jobs import Worker
from app.jobs.messaging import Sender, messaging_jobs
from app.twilio_client import make_client
from tests.helpers import TestDatabase, create_user
from tests.messaging.conftest import consenting_patient, deliveries, run_sender, without_twilio
from tests.messaging.twilio_double import TwilioDouble
from tests.tickets.factories import make_reservation, make_world, ticket_at

PHONE = "+15551230002"


def queued_sms(conn: psycopg.Connection, phone: str = PHONE) -> tuple[uuid.UUID, uuid.UUID]:
    """A ticket whose 'sent' SMS is queued for a consenting patient; (ticket, delivery)."""
    world = make_world(conn)
    consenting_patient(conn, world.patient, phone)
    ticket = ticket_at(conn, world, "prescription", "sent")
    [row] = deliveries(conn, ticket_id=ticket, channel="sms")
    assert row["status"] == "queued"
    only(conn, row["id"])
    return ticket, row["id"]


def only(conn: psycopg.Connection, delivery_id: uuid.UUID) -> None:
    """Cancel every other due SMS (the appointment confirmation of the ticket's factory)."""
    conn.execute(
        "update public.notification_deliveries set status = 'cancelled',"
        " suppressed_reason = 'test' where status in ('queued', 'scheduled') and id <> %s"
        " and channel <> 'chat'",
        [delivery_id],
    )


def confirmations(conn: psycopg.Connection, phones: list[str]) -> None:
    """One queued appointment confirmation per phone (a patient each, one practitioner)."""
    doctor = create_user(conn, "doctor")
    for phone in phones:
        patient = create_user(conn, "patient")
        consenting_patient(conn, patient, phone)
        make_reservation(conn, doctor, patient)


def delivery(conn: psycopg.Connection, delivery_id: uuid.UUID) -> dict:
    [row] = deliveries(conn, id=delivery_id)
    return row


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (21211, "failed"),
        (21614, "failed"),
        (21408, "failed"),
        (30005, "failed"),
        (30006, "failed"),
        (21610, "suppressed"),
        (20429, "queued"),
        (21611, "queued"),
        (30003, "queued"),
        (30008, "queued"),
        (20500, "queued"),
    ],
)
def test_failures_are_classified_by_error_code(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender, code: int, status: str
) -> None:
    _ticket, delivery_id = queued_sms(conn)
    double.fail_once[PHONE] = [code]
    sender.run(conn)
    row = delivery(conn, delivery_id)
    assert (row["status"], row["error_code"]) == (status, code)
    if status == "queued":  # retried later, with backoff and jitter
        assert row["next_attempt_at"] is not None
        conn.execute(
            "update public.notification_deliveries set next_attempt_at = now() where id = %s",
            [delivery_id],
        )
        sender.run(conn)
        assert delivery(conn, delivery_id)["status"] == "sent"
    if code == 21610:
        assert row["suppressed_reason"] == "opted_out"
        opted = conn.execute(
            "select source from private.message_opt_outs where address = %s and channel = 'sms'",
            [PHONE],
        ).fetchone()
        assert opted == ("error 21610",)


def test_retries_stop_at_the_limit(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender
) -> None:
    _ticket, delivery_id = queued_sms(conn)
    double.fail_always[PHONE] = 30003
    for _ in range(10):
        conn.execute(
            "update public.notification_deliveries set next_attempt_at = now() where id = %s",
            [delivery_id],
        )
        sender.run(conn)
    row = delivery(conn, delivery_id)
    assert (row["status"], row["attempts"]) == ("failed", 6)
    assert len(double.requests) == 6


def test_a_crash_after_the_request_left_makes_no_duplicate(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender
) -> None:
    _ticket, delivery_id = queued_sms(conn)
    # The request reaches Twilio, which creates the message, but the answer is lost.
    double.drop_response.add(PHONE)
    sender.run(conn)
    assert double.count() == 1
    row = delivery(conn, delivery_id)
    assert row["status"] == "sending"
    assert row["provider_message_id"] is None
    double.drop_response.clear()
    # The lease runs out; the next sender looks the message up instead of sending it again.
    conn.execute(
        "update public.notification_deliveries set next_attempt_at = now() where id = %s",
        [delivery_id],
    )
    sender.run(conn)
    assert double.count() == 1
    row = delivery(conn, delivery_id)
    assert row["status"] == "sent"
    assert row["provider_message_id"] == double.order[0]


def test_a_crash_before_the_request_left_sends_once(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender
) -> None:
    _ticket, delivery_id = queued_sms(conn)
    # Claimed, then the worker died before calling Twilio: Twilio has no record of it.
    conn.execute("select * from private.claim_notification_deliveries(10, null, '', '', '{sms}')")
    conn.execute(
        "update public.notification_deliveries set next_attempt_at = now() where id = %s",
        [delivery_id],
    )
    sender.run(conn)
    assert double.count() == 1
    assert delivery(conn, delivery_id)["status"] == "sent"


def test_three_workers_sharing_the_outbox_send_each_message_once(
    database: TestDatabase, conn: psycopg.Connection, double: TwilioDouble, settings: Settings
) -> None:
    confirmations(conn, [f"+1555300{n:04d}" for n in range(30)])
    double.latency = 0.02
    stop = threading.Event()
    workers = [
        Worker(database.url, messaging_jobs(settings), stop, concurrency=2) for _ in range(3)
    ]
    threads = [threading.Thread(target=w.run_forever, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        left = conn.execute(
            "select count(*) from public.notification_deliveries"
            " where channel = 'sms' and status in ('queued', 'sending')"
        ).fetchone()
        if left == (0,):
            break
        time.sleep(0.2)
    stop.set()
    for worker in workers:
        worker.request_stop()
    for thread in threads:
        thread.join(timeout=15)
    sms = deliveries(conn, channel="sms")
    sent = [r for r in sms if r["status"] == "sent"]
    assert len(sent) == 30
    assert [r for r in sms if r["status"] in ("queued", "sending")] == []
    assert double.count() == len(sent)
    assert len({m["to"] + m["body"] for m in double.messages.values()}) == double.count()


def test_the_send_rate_is_shared_in_the_database(
    conn: psycopg.Connection, double: TwilioDouble, settings: Settings
) -> None:
    confirmations(conn, [f"+1555400{n:04d}" for n in range(12)])
    from dataclasses import replace

    slow = replace(settings, twilio_max_sends_per_second=5.0)
    client = make_client(slow)
    assert client is not None
    senders = [Sender(slow, client), Sender(slow, client)]
    conn.execute("update private.twilio_send_budget set tokens = 0, updated_at = clock_timestamp()")
    started = time.monotonic()
    while double.count() < 10 and time.monotonic() - started < 10:
        for each in senders:
            each.run(conn)
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    # 10 messages at 5 per second for both senders together: about 2 s, never much less.
    assert elapsed >= 1.6, elapsed


def test_without_credentials_deliveries_stay_queued_and_go_out_when_they_appear(
    conn: psycopg.Connection, double: TwilioDouble, settings: Settings
) -> None:
    _ticket, delivery_id = queued_sms(conn)
    jobs = messaging_jobs(without_twilio(settings))
    assert "twilio_send" not in {j.name for j in jobs}
    for job in jobs:
        with conn.transaction():
            job.run(conn)
    assert delivery(conn, delivery_id)["status"] == "queued"
    [send] = [j for j in messaging_jobs(settings) if j.name == "twilio_send"]
    send.run(conn)
    assert delivery(conn, delivery_id)["status"] == "sent"
    assert double.count() == 1


def test_whatsapp_outside_the_window_falls_back_to_the_template_then_sms(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender
) -> None:
    world = make_world(conn)
    consenting_patient(conn, world.patient, PHONE, preferred="whatsapp")
    conn.execute(
        "update public.notification_rules set whatsapp_content_sid = %s,"
        ' whatsapp_variables = \'{"1": "{patient_first_name}"}\''
        " where name = 'Prescription sent to the pharmacy'",
        ["HX" + "a" * 32],
    )
    ticket = ticket_at(conn, world, "prescription", "sent")
    [row] = deliveries(conn, ticket_id=ticket, channel="whatsapp")
    only(conn, row["id"])
    assert row["address"] == "whatsapp:" + PHONE
    double.fail_once["whatsapp:" + PHONE] = [63016, 63016]
    run_sender(sender, conn)
    [row] = deliveries(conn, id=row["id"])
    assert (row["channel"], row["status"]) == ("sms", "sent")
    forms = double.requests
    assert "Body" in forms[0]
    assert forms[1]["ContentSid"] == "HX" + "a" * 32
    assert forms[1]["ContentVariables"] == '{"1": "Alex"}'
    assert forms[2]["To"] == PHONE


def test_whatsapp_waits_queued_until_its_sender_is_configured(
    conn: psycopg.Connection, double: TwilioDouble, settings: Settings
) -> None:
    from dataclasses import replace

    world = make_world(conn)
    consenting_patient(conn, world.patient, PHONE, preferred="whatsapp")
    conn.execute(
        "update public.notification_rules set whatsapp_content_sid = %s"
        " where name = 'Prescription sent to the pharmacy'",
        ["HX" + "b" * 32],
    )
    ticket = ticket_at(conn, world, "prescription", "sent")
    [row] = deliveries(conn, ticket_id=ticket, channel="whatsapp")
    only(conn, row["id"])
    sms_only = replace(settings, twilio_whatsapp_from="")
    client = make_client(sms_only)
    assert client is not None
    Sender(sms_only, client).run(conn)
    assert delivery(conn, row["id"])["status"] == "queued"
    assert double.count() == 0
    Sender(settings, client).run(conn)
    assert delivery(conn, row["id"])["status"] == "sent"
