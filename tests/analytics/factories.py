"""Hand-made fulfilment timelines: tracking rows of a pharmacy with the status times a test
chooses (local wall-clock times in the pharmacy's zone), and reading the rollups back."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from tests.helpers import create_provider, create_user
from tests.lifefile.factories import create_prescription_ticket

STATUS_COLUMNS = (
    "sent_at", "received_at", "processing_at", "ready_at", "shipped_at", "out_for_delivery_at",
    "delivered_at", "completed_at", "cancelled_at", "failed_at", "estimated_delivery",
)  # fmt: skip

CONTRACT_COLUMNS = (
    "pharmacy_id", "grain", "period_start", "sent_count", "received_count", "shipped_count",
    "delivered_count", "picked_up_count", "cancelled_count", "failed_count", "processing_mean",
    "processing_p50", "processing_p90", "shipping_mean", "shipping_p50", "shipping_p90",
    "delivery_mean", "delivery_p50", "delivery_p90", "total_mean", "total_p50", "total_p90",
    "on_time_rate", "same_day_shipment_rate", "next_day_shipment_rate", "bottleneck",
)  # fmt: skip


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


def create_pharmacy(conn: psycopg.Connection, timezone: str, name: str | None = None):
    """A pharmacy in ``timezone`` with one owner; returns (pharmacy id, owner id)."""
    owner = create_user(conn, "pharmacist")
    pharmacy = create_provider(conn, "pharmacy", name=name, owner=owner)
    conn.execute("update public.providers set timezone = %s where id = %s", [timezone, pharmacy])
    return pharmacy, owner


def local(timezone: str, text: str) -> datetime:
    """``'2026-10-26 09:00'`` on the wall clocks of ``timezone``."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(timezone))


def add_prescription(
    conn: psycopg.Connection, pharmacy: uuid.UUID, timezone: str, **times: str | None
) -> uuid.UUID:
    """A sent prescription tracked at ``pharmacy`` whose status times are the given local
    times (``received_at='2026-10-26 10:00'``); returns the tracking row's id."""
    ticket = create_prescription_ticket(conn)
    tracking_id = conn.execute(
        "select id from public.prescription_tracking where ticket_id = %s", [ticket.ticket_id]
    ).fetchone()[0]
    set_times(conn, tracking_id, timezone, pharmacy_id=pharmacy, **times)
    return tracking_id


def set_times(
    conn: psycopg.Connection,
    tracking_id: uuid.UUID,
    timezone: str,
    *,
    pharmacy_id: uuid.UUID | None = None,
    **times: str | None,
) -> None:
    """Set status times of a tracking row as the system does (local times; None clears)."""
    unknown = set(times) - set(STATUS_COLUMNS)
    assert not unknown, unknown
    values: dict[str, Any] = {k: (local(timezone, v) if v else None) for k, v in times.items()}
    if pharmacy_id is not None:
        values["pharmacy_id"] = pharmacy_id
    assignments = ", ".join(f"{column} = %({column})s" for column in values)
    conn.execute(
        f"update public.prescription_tracking set {assignments} where id = %(id)s",
        {**values, "id": tracking_id},
    )


def refresh(conn: psycopg.Connection) -> int:
    """One run of the worker's rollup job."""
    return conn.execute("select private.refresh_fulfillment_analytics()").fetchone()[0]


def rollups(conn: psycopg.Connection, **where: Any) -> list[dict[str, Any]]:
    """Rows of public.fulfillment_analytics (contract columns), filtered by equality."""
    clauses = (
        " and ".join(f"{k} is null" if v is None else f"{k} = %({k})s" for k, v in where.items())
        or "true"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"select {', '.join(CONTRACT_COLUMNS)} from public.fulfillment_analytics"
            f" where {clauses} order by pharmacy_id nulls last, grain, period_start",
            where,
        ).fetchall()


def one(rows: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(rows) == 1, rows
    return rows[0]


def rate(numerator: int, denominator: int) -> Decimal:
    return Decimal(numerator) / Decimal(denominator)
