"""The worker's Lifefile job: process the webhook inbox into tracking, history and tickets.

Woken at once by NOTIFY lifefile_webhook_events (sent when a delivery is stored and when a
prescription gains its Lifefile link), and run every ``SWEEP_SECONDS`` anyway for unmatched
events whose retry is due and for anything a missed notification left behind. A queue job: it
runs on the worker's ``--concurrency`` lanes, each claiming a batch with ``for update skip
locked`` and never an event whose order has an earlier one still waiting (events of one order
are processed in arrival order). The processing itself is SQL (private.process_lifefile_events).
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
    return [
        Job(
            "lifefile_webhooks",
            process_inbox,
            every=SWEEP_SECONDS,
            channels=(CHANNEL,),
            queue=True,
        )
    ]
