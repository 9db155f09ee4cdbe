"""Analytics rows as the outside world reads them: JSON values (ISO dates, intervals in
seconds, rates as numbers) and CSV (RFC 4180: CRLF line ends, a header row, UTF-8, quotes
doubled inside quoted fields, null as an empty field). Shared by the endpoints and the CLI."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

# The contract columns of fulfillment_analytics, fulfillment_report and the CSV, in order.
FULFILLMENT_COLUMNS = (
    "pharmacy_id", "grain", "period_start", "sent_count", "received_count", "shipped_count",
    "delivered_count", "picked_up_count", "cancelled_count", "failed_count", "processing_mean",
    "processing_p50", "processing_p90", "shipping_mean", "shipping_p50", "shipping_p90",
    "delivery_mean", "delivery_p50", "delivery_p90", "total_mean", "total_p50", "total_p90",
    "on_time_rate", "same_day_shipment_rate", "next_day_shipment_rate", "bottleneck",
)  # fmt: skip

OPERATIONS_COLUMNS = (
    "ticket_type", "provider_id", "period_start", "opened_count", "accepted_count",
    "declined_count", "completed_count", "time_to_accept_p50", "time_to_accept_p90",
    "first_response_p50", "open_backlog_1d", "open_backlog_7d", "open_backlog_older",
    "active_tickets",
)  # fmt: skip

GRAINS = ("day", "week", "month")


def json_value(value: Any) -> Any:
    """A database value as JSON: intervals in seconds, dates ISO, numerics as numbers."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def json_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    return [{c: json_value(v) for c, v in zip(columns, row, strict=True)} for row in rows]


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        return str(int(seconds)) if seconds == int(seconds) else repr(seconds)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 0.5, not 0.50000000000000000000
    return str(json_value(value))


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV of ``rows`` under a header of ``columns``."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_field(v) for v in row])
    return out.getvalue()
