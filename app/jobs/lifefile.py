"""The worker's Lifefile job: process the webhook inbox into tracking, history and tickets.

Woken at once by NOTIFY lifefile_webhook_events (sent when a delivery is stored, when a
prescription gains its Lifefile link, and when a batch was full), and run every
``SWEEP_SECONDS`` anyway for unmatched events whose retry is due and for anything a missed
notification left behind. The processing itself is SQL (private.process_lifefile_events).
"""

from __future__ import annotations

import psycopg

from app.jobs import Job
from app.queries import load_queries

CHANNEL = "lifefile_webhook_events"
SWEEP_SECONDS = 15.0
BATCH_SIZE = 100

queries = load_queries("lifefile.sql")


def process_inbox(conn: psycopg.Connection) -> int:
    row = conn.execute(queries.process_lifefile_events, {"batch_size": BATCH_SIZE}).fetchone()
    return row[0] if row else 0


def lifefile_jobs() -> list[Job]:
    return [Job("lifefile_webhooks", process_inbox, every=SWEEP_SECONDS, channels=(CHANNEL,))]
