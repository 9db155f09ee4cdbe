"""`carehub analytics report`: one self-contained HTML page (no network needed to open it)
with charts drawn by matplotlib as inline SVG — turnaround by stage per week (the network's
medians), on-time rate per pharmacy against the network — and the weekly table of
fulfillment_report for the period."""

from __future__ import annotations

import html
import io
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from app.analytics_export import FULFILLMENT_COLUMNS

# At most this many pharmacies get a line of their own in the on-time chart (those with the
# most prescriptions received); the table lists every pharmacy.
CHART_PHARMACIES = 12
STAGES = ("processing", "shipping", "delivery")

TABLE_COLUMNS = (
    ("period_start", "week"), ("sent_count", "sent"), ("received_count", "received"),
    ("shipped_count", "shipped"), ("delivered_count", "delivered"),
    ("picked_up_count", "picked up"), ("cancelled_count", "cancelled"),
    ("failed_count", "failed"), ("processing_p50", "processing p50"),
    ("shipping_p50", "shipping p50"), ("delivery_p50", "delivery p50"),
    ("total_p50", "total p50"), ("total_p90", "total p90"), ("on_time_rate", "on time"),
    ("same_day_shipment_rate", "same day"), ("next_day_shipment_rate", "next day"),
    ("bottleneck", "bottleneck"),
)  # fmt: skip


def display(value: Any) -> str:
    """How the table shows a value: intervals in hours, rates in percent."""
    if value is None:
        return "—"
    if isinstance(value, timedelta):
        return f"{value.total_seconds() / 3600:.1f} h"
    if isinstance(value, Decimal):
        return f"{float(value) * 100:.1f} %"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def raw(value: Any) -> str:
    """The exact value behind a cell (data-value): seconds, a rate 0-1, a date, a count."""
    if value is None:
        return ""
    if isinstance(value, timedelta):
        return repr(value.total_seconds())
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _svg(figure: Any) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight")
    text = out.getvalue()
    # The page is one document: keep the <svg> element, drop the XML prologue and doctype.
    return text[text.index("<svg") :]


def _week_dates(rows: list[dict[str, Any]]) -> list[date]:
    return sorted({r["period_start"] for r in rows})


def turnaround_chart(network: list[dict[str, Any]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.6))
    axes = figure.subplots()
    weeks = _week_dates(network)
    by_week = {r["period_start"]: r for r in network}
    bottom = [0.0] * len(weeks)
    for stage in STAGES:
        values = [(by_week[w][f"{stage}_p50"] or timedelta()).total_seconds() / 3600 for w in weeks]
        axes.bar([w.isoformat() for w in weeks], values, bottom=bottom, label=f"{stage} (median)")
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set_ylabel("hours")
    axes.set_title("Turnaround by stage per week (network medians)")
    axes.legend(loc="upper left", fontsize="small")
    axes.tick_params(axis="x", labelrotation=45, labelsize="small")
    return _svg(figure)


def on_time_chart(
    network: list[dict[str, Any]], pharmacies: dict[Any, list[dict[str, Any]]], names: dict
) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.6))
    axes = figure.subplots()
    busiest = sorted(pharmacies, key=lambda p: -sum(r["received_count"] for r in pharmacies[p]))
    for pharmacy in busiest[:CHART_PHARMACIES]:
        points = [(r["period_start"], r["on_time_rate"]) for r in pharmacies[pharmacy]]
        points = [(w.isoformat(), float(v) * 100) for w, v in points if v is not None]
        if points:
            axes.plot(
                *zip(*points, strict=True),
                linewidth=1,
                alpha=0.6,
                marker=".",
                label=names.get(pharmacy, str(pharmacy))[:30],
            )
    points = [
        (r["period_start"].isoformat(), float(r["on_time_rate"]) * 100)
        for r in network
        if r["on_time_rate"] is not None
    ]
    if points:
        axes.plot(*zip(*points, strict=True), color="black", linewidth=3, label="network")
    axes.set_ylim(0, 105)
    axes.set_ylabel("on time (%)")
    axes.set_title("On-time delivery rate per pharmacy against the network")
    axes.legend(loc="lower left", fontsize="x-small", ncol=2)
    axes.tick_params(axis="x", labelrotation=45, labelsize="small")
    return _svg(figure)


def _table(rows: list[dict[str, Any]], names: dict) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in TABLE_COLUMNS)
    lines = [f"<table><thead><tr><th>pharmacy</th>{head}</tr></thead><tbody>"]
    for row in rows:
        who = "network" if row["pharmacy_id"] is None else names.get(row["pharmacy_id"], "")
        pid = "" if row["pharmacy_id"] is None else str(row["pharmacy_id"])
        cells = "".join(
            f'<td data-column="{column}" data-value="{html.escape(raw(row[column]))}">'
            f"{html.escape(display(row[column]))}</td>"
            for column, _ in TABLE_COLUMNS
        )
        lines.append(
            f'<tr data-pharmacy-id="{pid}"><th scope="row">{html.escape(who)}</th>{cells}</tr>'
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th[scope=row] { text-align: left; }
svg { max-width: 100%; height: auto; }
"""


def render_report(conn: psycopg.Connection, start: date, end: date) -> str:
    """The HTML page for start .. end (weekly rows of fulfillment_report, as ``conn``'s role)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"select {', '.join(FULFILLMENT_COLUMNS)}"  # noqa: S608 (fixed column names)
            " from public.fulfillment_report(%s, %s, 'week')",
            [start, end],
        ).fetchall()
        ids = sorted({r["pharmacy_id"] for r in rows if r["pharmacy_id"]}, key=str)
        names: dict[uuid.UUID, str] = {
            r["id"]: r["name"]
            for r in cur.execute(
                "select id, name from public.providers where id = any(%s)", [ids]
            ).fetchall()
        }
    network = [r for r in rows if r["pharmacy_id"] is None]
    pharmacies: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["pharmacy_id"] is not None:
            pharmacies[row["pharmacy_id"]].append(row)
    title = f"Fulfilment report {start.isoformat()} to {end.isoformat()}"
    generated = datetime.now().astimezone().isoformat(timespec="seconds")
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Weekly periods (Monday to Sunday, each pharmacy's local dates); generated "
        f"{html.escape(generated)}; {len(pharmacies)} pharmacies. Intervals in hours, rates "
        "in percent; definitions in the README (Fulfilment and operations analytics).</p>",
    ]
    if rows:
        body.append(f"<figure>{turnaround_chart(network)}</figure>")
        body.append(f"<figure>{on_time_chart(network, pharmacies, names)}</figure>")
    else:
        body.append("<p>No activity in this period.</p>")
    body.append(_table(rows, names))
    return (
        "<!DOCTYPE html>\n"
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
