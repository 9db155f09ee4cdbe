"""The worker's messaging jobs: sending SMS/WhatsApp deliveries through Twilio, posting chat
deliveries, processing the Twilio inbox, and the daily reconciliation.

The send job is a queue job with its own transactions (see app.jobs.Job.own_transactions): it
claims a small batch in one autocommit call (skip locked, within the send budget all workers
share in the database), calls Twilio with no transaction open, then records each answer. Twilio
has no idempotency key, so a row whose sender crashed or timed out after the request may have
left comes back as a lookup: its sid is taken from its status callbacks (they carry the delivery
id) or found in Twilio's message list (same To, same body, sent since it was created); only when
Twilio has no record of it is it sent again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from app.config import Settings
from app.jobs import Job
from app.jobs.webhooks import inbox_job
from app.queries import load_queries
from app.twilio_client import make_client
from app.webhooks.twilio import INBOX, STATUS_PATH

log = logging.getLogger(__name__)
queries = load_queries("messaging.sql")

BATCH_SIZE = 20
SEND_EVERY_SECONDS = 0.2
CHAT_EVERY_SECONDS = 1.0
INBOX_SWEEP_SECONDS = 15.0
RECONCILE_EVERY_SECONDS = 24 * 3600.0
# Sends of one batch run side by side: Twilio answers in ~100 ms, the budget sets the pace.
SEND_THREADS = 32


@dataclass(frozen=True)
class SendResult:
    outcome: str  # accepted | error | unknown | found
    sid: str | None = None
    provider_status: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    http_status: int | None = None


class Sender:
    """Claims, sends and records SMS/WhatsApp deliveries."""

    def __init__(self, settings: Settings, client: Client, batch_size: int = BATCH_SIZE):
        self.settings = settings
        self.client = client
        self.batch_size = batch_size
        self.pool = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="twilio-send")
        # The channels this sender may send; the others' rows wait, queued, for their settings.
        self.channels = [
            channel
            for channel, on in (
                ("sms", settings.sms_configured),
                ("whatsapp", settings.whatsapp_configured),
            )
            if on
        ]

    def run(self, conn: psycopg.Connection) -> int:
        rows = conn.execute(
            queries.claim_notification_deliveries,
            {
                "batch_size": self.batch_size,
                "per_second": self.settings.twilio_max_sends_per_second,
                "support_phone": self.settings.support_phone,
                "app_base_url": self.settings.app_base_url,
                "channels": self.channels,
            },
        ).fetchall()
        if not rows:
            return 0
        columns = (
            "id",
            "channel",
            "address",
            "body",
            "content_sid",
            "content_variables",
            "lookup",
            "created_at",
            "attempts",
        )
        claimed = [dict(zip(columns, row, strict=True)) for row in rows]
        lookups = {
            row["id"]: conn.execute(queries.twilio_sid_from_callbacks, {"id": row["id"]}).fetchone()
            for row in claimed
            if row["lookup"]
        }
        results = list(self.pool.map(lambda r: self.deliver(r, lookups.get(r["id"])), claimed))
        for row, result in zip(claimed, results, strict=True):
            self.record(conn, row["id"], result)
        return len(claimed)

    def deliver(self, row: dict[str, Any], callback_sid: tuple | None) -> SendResult:
        if row["lookup"]:
            found = self.look_up(row, callback_sid[0] if callback_sid else None)
            if found is not None:
                return found
        return self.send(row)

    def look_up(self, row: dict[str, Any], callback_sid: str | None) -> SendResult | None:
        """The message an earlier attempt created, or None when Twilio has no record of it."""
        if callback_sid:
            return SendResult("found", callback_sid, "sent")
        try:
            for message in self.client.messages.list(
                to=row["address"],
                date_sent_after=row["created_at"] - timedelta(minutes=5),
                limit=200,
            ):
                if message.body == row["body"]:
                    return SendResult("found", message.sid, message.status)
        except TwilioRestException as exc:
            return SendResult("unknown", error_message=f"lookup failed: {exc.msg}")
        except Exception as exc:  # the network: still unknown, looked up again later
            return SendResult("unknown", error_message=f"lookup failed: {exc}")
        return None

    def send(self, row: dict[str, Any]) -> SendResult:
        settings = self.settings
        params: dict[str, Any] = {"to": row["address"]}
        if settings.public_base_url:
            params["status_callback"] = (
                f"{settings.public_base_url}{STATUS_PATH}?delivery_id={row['id']}"
            )
        if row["channel"] == "whatsapp":
            params["from_"] = settings.twilio_whatsapp_from
        elif settings.twilio_messaging_service_sid:
            params["messaging_service_sid"] = settings.twilio_messaging_service_sid
        else:
            params["from_"] = settings.twilio_phone_number
        if row["content_sid"]:
            params["content_sid"] = row["content_sid"]
            params["content_variables"] = _json(row["content_variables"] or {})
        else:
            params["body"] = row["body"]
        try:
            message = self.client.messages.create(**params)
        except TwilioRestException as exc:
            return SendResult(
                "error",
                error_code=exc.code,
                error_message=str(exc.msg)[:500],
                http_status=exc.status,
            )
        except Exception as exc:  # timeout or connection lost: the request may have left
            return SendResult("unknown", error_message=f"{type(exc).__name__}: {exc}"[:500])
        return SendResult("accepted", message.sid, message.status)

    def record(self, conn: psycopg.Connection, delivery_id: object, result: SendResult) -> None:
        outcome = "accepted" if result.outcome == "found" else result.outcome
        conn.execute(
            queries.record_notification_send,
            {
                "id": delivery_id,
                "outcome": outcome,
                "sid": result.sid,
                "provider_status": result.provider_status,
                "error_code": result.error_code,
                "error_message": result.error_message,
                "http_status": result.http_status,
            },
        )


def _json(value: object) -> str:
    import json

    return json.dumps(value)


def reconcile(conn: psycopg.Connection, client: Client, since: str = "24 hours") -> int:
    """Fetch the final status of messages still not final (Twilio recommends it daily)."""
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            queries.deliveries_to_reconcile, {"since": since, "max_rows": 10_000}
        ).fetchall()
    changed = 0
    for delivery_id, sid in rows:
        try:
            message = client.messages(sid).fetch()
        except TwilioRestException as exc:
            log.warning("twilio reconcile: %s: %s", sid, exc.msg)
            continue
        with conn.cursor(row_factory=tuple_row) as cur:
            row = cur.execute(
                queries.apply_delivery_status,
                {
                    "id": delivery_id,
                    "sid": sid,
                    "status": message.status,
                    "error_code": message.error_code,
                    "error_message": message.error_message,
                },
            ).fetchone()
        changed += 1 if row and row[0] == "applied" else 0
    return changed


def chat_job(settings: Settings) -> Job:
    def run(conn: psycopg.Connection) -> int:
        row = conn.execute(
            queries.deliver_chat_notifications,
            {
                "batch_size": BATCH_SIZE,
                "support_phone": settings.support_phone,
                "app_base_url": settings.app_base_url,
            },
        ).fetchone()
        return int(row[0]) if row and row[0] else 0

    return Job("chat_notifications", run, every=CHAT_EVERY_SECONDS, queue=True)


def messaging_jobs(
    settings: Settings | None = None,
    client_factory: Callable[[Settings], Client | None] = make_client,
) -> list[Job]:
    """The jobs; without Twilio credentials no send job (deliveries stay queued, nothing lost,
    and are sent once a worker starts with them)."""
    if settings is None:
        settings = Settings.from_env(
            {**os.environ, "DATABASE_URL": os.environ.get("DATABASE_URL", "postgresql://unset")}
        )
    jobs = [chat_job(settings), inbox_job(INBOX, every=INBOX_SWEEP_SECONDS, batch_size=100)]
    client = (
        client_factory(settings)
        if (settings.sms_configured or settings.whatsapp_configured)
        else None
    )
    if client is None:
        log.warning("messaging: Twilio is not configured; SMS and WhatsApp deliveries stay queued")
        return jobs
    sender = Sender(settings, client)
    jobs.append(
        Job("twilio_send", sender.run, every=SEND_EVERY_SECONDS, queue=True, own_transactions=True)
    )
    jobs.append(
        Job(
            "twilio_reconcile",
            lambda conn: reconcile(conn, client),
            every=RECONCILE_EVERY_SECONDS,
            own_transactions=True,
        )
    )
    return jobs


__all__ = ["Sender", "messaging_jobs", "reconcile"]
