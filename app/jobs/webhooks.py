"""The worker's side of the shared webhook inbox: one queue job per provider's inbox, and the
housekeeping every provider shares (forgetting idle rate-limit buckets)."""

from __future__ import annotations

import psycopg

from app.jobs import Job
from app.queries import load_queries
from app.webhooks.inbox import Inbox

queries = load_queries("webhooks.sql")

# A bucket untouched for an hour is full again: forgetting it changes nothing.
SWEEP_SECONDS = 600.0


def prune_rate_buckets(conn: psycopg.Connection) -> int:
    row = conn.execute(queries.prune_webhook_rate_buckets).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def inbox_job(spec: Inbox, *, every: float, batch_size: int) -> Job:
    """The queue job that processes ``spec``'s inbox: woken by its channel, swept every
    ``every`` seconds, run on the worker's concurrency lanes (its SQL claims with skip locked),
    ``batch_size`` events per transaction."""

    def process(conn: psycopg.Connection) -> int:
        row = conn.execute(spec.process_query, {"batch_size": batch_size}).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    return Job(
        f"{spec.provider}_webhooks", process, every=every, channels=(spec.channel,), queue=True
    )


def webhook_jobs() -> list[Job]:
    return [Job("prune_webhook_rate_buckets", prune_rate_buckets, every=SWEEP_SECONDS)]
