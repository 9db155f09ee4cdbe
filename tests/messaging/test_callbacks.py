"""Twilio callbacks and inbound messages through the shared inbox: signed with
RequestValidator's scheme against PUBLIC_BASE_URL, stored before the answer, deduplicated on
(MessageSid, MessageStatus), applied only forward; STOP/START/HELP; replies to the thread."""

from __future__ import annotations

import psycopg
from flask.testing import FlaskClient

from app.jobs.messaging import Sender
from tests.messaging.conftest import (
    PUBLIC_BASE_URL,
    consenting_patient,
    deliveries,
    process_inbox,
    run_sender,
)
from tests.messaging.twilio_double import TwilioDouble
from tests.tickets.factories import make_world, set_status, ticket_at

PHONE = "+15551230003"
INBOUND = PUBLIC_BASE_URL + "/api/webhooks/twilio/inbound"


def sent_sms(conn: psycopg.Connection, sender: Sender) -> tuple[dict, object]:
    world = make_world(conn)
    consenting_patient(conn, world.patient, PHONE)
    ticket = ticket_at(conn, world, "prescription", "sent")
    run_sender(sender, conn)
    [row] = deliveries(conn, ticket_id=ticket, channel="sms")
    assert row["status"] == "sent"
    return row, world


def events(conn: psycopg.Connection) -> int:
    row = conn.execute("select count(*) from private.twilio_webhook_events").fetchone()
    assert row is not None
    return row[0]


def test_callbacks_out_of_order_and_twice_apply_only_forward(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender, client: FlaskClient
) -> None:
    row, _world = sent_sms(conn, sender)
    sid = row["provider_message_id"]
    for status in ("delivered", "sent", "delivered", "sent"):
        response = double.callback(sid, status)
        assert response.status_code == 204
    assert events(conn) == 2  # (sid, delivered) and (sid, sent), each once
    process_inbox(conn)
    [row] = deliveries(conn, id=row["id"])
    assert row["status"] == "delivered"
    assert row["delivered_at"] is not None
    double.callback(sid, "undelivered", error_code=30003)
    process_inbox(conn)
    assert deliveries(conn, id=row["id"])[0]["status"] == "delivered"


def test_a_failed_callback_is_final(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender, client: FlaskClient
) -> None:
    row, _world = sent_sms(conn, sender)
    sid = row["provider_message_id"]
    double.callback(sid, "undelivered", error_code=30005)
    double.callback(sid, "delivered")
    process_inbox(conn)
    [row] = deliveries(conn, id=row["id"])
    assert (row["status"], row["error_code"]) == ("undelivered", 30005)


def test_bad_signatures_are_refused_with_403_and_nothing_is_stored(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender, client: FlaskClient
) -> None:
    row, _world = sent_sms(conn, sender)
    form = {"MessageSid": row["provider_message_id"], "MessageStatus": "delivered"}
    path = f"/api/webhooks/twilio/status?delivery_id={row['id']}"
    assert client.post(path, data=form).status_code == 403
    bad = client.post(path, data=form, headers={"X-Twilio-Signature": "bm90IGl0"})
    assert bad.status_code == 403
    odd = client.post(path, data=form, headers={"X-Twilio-Signature": "\u00e9\u00e9"})
    assert odd.status_code == 403
    # Signed for another delivery id: the query is part of the signed URL.
    from twilio.request_validator import RequestValidator

    from tests.messaging.twilio_double import AUTH_TOKEN

    other = RequestValidator(AUTH_TOKEN).compute_signature(
        PUBLIC_BASE_URL + "/api/webhooks/twilio/status?delivery_id=x", form
    )
    assert client.post(path, data=form, headers={"X-Twilio-Signature": other}).status_code == 403
    assert events(conn) == 0


def test_stop_opts_out_and_start_opts_back_in(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender, client: FlaskClient
) -> None:
    row, _world = sent_sms(conn, sender)
    response = double.inbound(INBOUND, PHONE, "stop")
    assert response.status_code == 200
    assert b"<Response></Response>" in response.data
    process_inbox(conn)
    ticket = row["ticket_id"]
    set_status(conn, ticket, "received")
    latest = deliveries(conn, ticket_id=ticket, channel="sms")[-1]
    assert (latest["status"], latest["suppressed_reason"]) == ("suppressed", "opted_out")
    double.inbound(INBOUND, PHONE, "START", opt_out_type="START")
    process_inbox(conn)
    set_status(conn, ticket, "processing")
    latest = deliveries(conn, ticket_id=ticket, channel="sms")[-1]
    assert latest["status"] == "queued"


def test_an_opt_out_after_queueing_is_checked_again_at_send_time(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender, client: FlaskClient
) -> None:
    world = make_world(conn)
    consenting_patient(conn, world.patient, PHONE)
    ticket = ticket_at(conn, world, "prescription", "sent")
    double.inbound(INBOUND, PHONE, "UNSUBSCRIBE")
    process_inbox(conn)
    run_sender(sender, conn)
    [row] = deliveries(conn, ticket_id=ticket, channel="sms")
    assert (row["status"], row["suppressed_reason"]) == ("suppressed", "opted_out")
    assert double.sent_to(PHONE) == [] or all(
        "prescription" not in m["body"] for m in double.sent_to(PHONE)
    )


def test_a_reply_is_posted_to_the_patients_open_ticket(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender, client: FlaskClient
) -> None:
    row, world = sent_sms(conn, sender)
    double.inbound(INBOUND, PHONE, "Can I collect it tomorrow instead?")
    process_inbox(conn)
    message = conn.execute(
        "select m.sender_id, m.body, m.metadata ->> 'via' from public.chat_messages m"
        " join public.chat_threads t on t.id = m.thread_id"
        " where t.ticket_id = %s and m.kind = 'text'",
        [row["ticket_id"]],
    ).fetchone()
    assert message == (world.patient, "Can I collect it tomorrow instead?", "sms")


def test_healthz_says_whether_sms_and_whatsapp_are_enabled(client: FlaskClient) -> None:
    body = client.get("/healthz").get_json()
    assert body["features"]["sms"] == "enabled"
    assert body["features"]["whatsapp"] == "enabled"
