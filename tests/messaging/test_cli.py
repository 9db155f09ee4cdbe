"""The operators' commands: notifications list/show/retry/cancel/send-test, twilio reconcile,
webhooks list --provider twilio (against the test database and the Twilio double)."""

from __future__ import annotations

import psycopg
from click.testing import CliRunner
from flask.testing import FlaskClient

from app.cli import main
from app.config import Settings
from app.jobs.messaging import Sender
from tests.helpers import TestDatabase
from tests.messaging.conftest import consenting_patient, deliveries, run_sender
from tests.messaging.twilio_double import ACCOUNT_SID, AUTH_TOKEN, TwilioDouble
from tests.tickets.factories import make_world, ticket_at

PHONE = "+15551230005"


def env(database: TestDatabase, settings: Settings) -> dict[str, str]:
    return {
        "DATABASE_URL": database.url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_PHONE_NUMBER": settings.twilio_phone_number,
        "TWILIO_API_BASE_URL": settings.twilio_api_base_url,
    }


def test_list_show_cancel_and_retry(
    database: TestDatabase, conn: psycopg.Connection, settings: Settings
) -> None:
    world = make_world(conn)
    consenting_patient(conn, world.patient, PHONE)
    ticket = ticket_at(conn, world, "prescription", "sent")
    [row] = deliveries(conn, ticket_id=ticket, channel="sms")
    runner = CliRunner(env=env(database, settings))
    listed = runner.invoke(main, ["notifications", "list", "--ticket", str(ticket)])
    assert listed.exit_code == 0, listed.output
    assert str(row["id"]) in listed.output
    assert "queued" in listed.output
    shown = runner.invoke(main, ["notifications", "show", str(row["id"])])
    assert shown.exit_code == 0
    assert "Prescription sent to the pharmacy" in shown.output
    cancelled = runner.invoke(main, ["notifications", "cancel", str(row["id"])])
    assert cancelled.exit_code == 0
    assert "cancelled" in cancelled.output
    retried = runner.invoke(main, ["notifications", "retry", "--status", "cancelled"])
    assert retried.exit_code == 0, retried.output
    assert deliveries(conn, id=row["id"])[0]["status"] == "queued"
    again = runner.invoke(main, ["notifications", "retry", str(row["id"])])
    assert again.exit_code != 0
    assert "not failed" in again.output


def test_send_test_and_reconcile_and_the_twilio_inbox(
    database: TestDatabase,
    conn: psycopg.Connection,
    settings: Settings,
    double: TwilioDouble,
    sender: Sender,
    client: FlaskClient,
) -> None:
    runner = CliRunner(env=env(database, settings))
    sent = runner.invoke(main, ["notifications", "send-test", "--to", PHONE])
    assert sent.exit_code == 0, sent.output
    assert sent.output.startswith("SM")
    assert double.sent_to(PHONE)
    world = make_world(conn)
    consenting_patient(conn, world.patient, PHONE)
    ticket = ticket_at(conn, world, "prescription", "sent")
    run_sender(sender, conn)
    [row] = deliveries(conn, ticket_id=ticket, channel="sms")
    # Twilio delivered it, but the callback never came: reconciliation finds out.
    double.messages[row["provider_message_id"]]["status"] = "delivered"
    reconciled = runner.invoke(main, ["twilio", "reconcile", "--since", "24h"])
    assert reconciled.exit_code == 0, reconciled.output
    assert deliveries(conn, id=row["id"])[0]["status"] == "delivered"
    double.callback(row["provider_message_id"], "read")
    inbox = runner.invoke(main, ["webhooks", "list", "--provider", "twilio"])
    assert inbox.exit_code == 0
    assert row["provider_message_id"] in inbox.output
    lifefile = runner.invoke(main, ["webhooks", "list", "--provider", "lifefile"])
    assert lifefile.exit_code == 0, lifefile.output
