"""Scheduling sweeps: expire reservation requests whose hold ran out, and slots that started."""

from __future__ import annotations

import psycopg

from app.jobs import Job
from app.queries import load_queries

QUERIES = load_queries("scheduling.sql")

# Holds last 30 minutes; a minute's delay in releasing one is what the product accepts.
SWEEP_SECONDS = 60.0


def _scalar(conn: psycopg.Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def expire_reservation_requests(conn: psycopg.Connection) -> int:
    return _scalar(conn, QUERIES.expire_reservation_requests)


def expire_time_slots(conn: psycopg.Connection) -> int:
    return _scalar(conn, QUERIES.expire_time_slots)


def scheduling_jobs() -> list[Job]:
    # Requests first: a started slot's holds expire before the slot does.
    return [
        Job("expire_reservation_requests", expire_reservation_requests, every=SWEEP_SECONDS),
        Job("expire_time_slots", expire_time_slots, every=SWEEP_SECONDS),
    ]
