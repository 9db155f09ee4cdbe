"""Webhook housekeeping shared by every provider: forget idle rate-limit buckets."""

from __future__ import annotations

import psycopg

from app.jobs import Job
from app.queries import load_queries

queries = load_queries("webhooks.sql")

# A bucket untouched for an hour is full again: forgetting it changes nothing.
SWEEP_SECONDS = 600.0


def prune_rate_buckets(conn: psycopg.Connection) -> int:
    row = conn.execute(queries.prune_webhook_rate_buckets).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def webhook_jobs() -> list[Job]:
    return [Job("prune_webhook_rate_buckets", prune_rate_buckets, every=SWEEP_SECONDS)]
