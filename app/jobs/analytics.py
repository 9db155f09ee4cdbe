"""The worker's fulfilment rollup: recompute the periods that tracking changes marked dirty.

A sweep (one lane; the SQL takes an advisory lock, so several worker processes never compute
the same network rows at once), every ``SWEEP_SECONDS``: a change to tracking is in the rollups
within a minute. The work is SQL: private.refresh_fulfillment_analytics.
"""

from __future__ import annotations

import psycopg

from app.jobs import Job
from app.queries import load_queries

QUERIES = load_queries("analytics.sql")

SWEEP_SECONDS = 20.0
# Dirty markings per run (a marking is a row of a log; many name the same period). Taking them
# all at once computes each period, and above all each network period, once per run.
BATCH_SIZE = 200000


def refresh_fulfillment_analytics(conn: psycopg.Connection) -> int:
    row = conn.execute(QUERIES.refresh_fulfillment_analytics, {"batch_size": BATCH_SIZE}).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def analytics_jobs() -> list[Job]:
    return [
        Job(
            "refresh_fulfillment_analytics",
            refresh_fulfillment_analytics,
            every=SWEEP_SECONDS,
        )
    ]
