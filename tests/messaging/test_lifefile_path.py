"""From a signed Lifefile push to the text: the SHIPPED text carries the tracking number the
same processing wrote; a Lifefile event that does not move the ticket queues nothing; and the
service without Twilio settings says SMS and WhatsApp are disabled."""

from __future__ import annotations

import psycopg

from app import create_app
from app.config import Settings
from app.db import EXTENSION_KEY as POOL_KEY
from app.jobs.messaging import Sender
from tests.helpers import TestDatabase
from tests.lifefile.factories import create_prescription_ticket, event, lifefile_app, post_event
from tests.lifefile.factories import process_all as process_lifefile
from tests.messaging.conftest import consenting_patient, deliveries, run_sender, without_twilio
from tests.messaging.twilio_double import TwilioDouble

PHONE = "+15551230006"


def test_a_lifefile_push_texts_the_tracking_and_a_stale_one_texts_nothing(
    database: TestDatabase, conn: psycopg.Connection, double: TwilioDouble, sender: Sender
) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-MSG-1", send=False)
    consenting_patient(conn, ticket.patient, PHONE)
    conn.execute(
        "update public.healthcare_tickets set status = 'sent' where id = %s", [ticket.ticket_id]
    )
    with lifefile_app(database.url) as app:
        client = app.test_client()
        shipped = event(
            "order_shipped",
            order_id="LF-MSG-1",
            changed_at="2026-11-20T12:00:00Z",
            tracking={"trackingNumber": "1ZTRACK42", "carrier": "UPS"},
        )
        assert post_event(client, shipped).status_code == 202
        process_lifefile(conn)
        before = len(deliveries(conn, ticket_id=ticket.ticket_id))
        stale = event("order_processing", order_id="LF-MSG-1", changed_at="2026-11-20T11:00:00Z")
        assert post_event(client, stale).status_code == 202
        process_lifefile(conn)
    assert len(deliveries(conn, ticket_id=ticket.ticket_id)) == before
    run_sender(sender, conn)
    texts = [m["body"] for m in double.sent_to(PHONE)]
    assert any("1ZTRACK42" in t and "UPS" in t for t in texts), texts
    assert all("Amoxicillin" not in t for t in texts)


def test_healthz_says_sms_and_whatsapp_are_disabled_without_credentials(
    settings: Settings,
) -> None:
    app = create_app(without_twilio(settings))
    try:
        body = app.test_client().get("/healthz").get_json()
    finally:
        app.extensions[POOL_KEY].close()
    assert body["features"]["sms"].startswith("disabled")
    assert "TWILIO_AUTH_TOKEN" in body["features"]["whatsapp"]
