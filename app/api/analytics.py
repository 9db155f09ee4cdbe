"""Fulfilment and operations analytics over HTTP.

- ``GET /api/pharmacy/analytics?from=&to=&grain=&pharmacy_id=[&format=csv]`` — the
  fulfillment_report rows as the signed-in user (RLS: a pharmacy's members their pharmacy,
  admins every pharmacy and the network rows).
- ``GET /api/operations/analytics?from=&to=&grain=[&format=csv]`` — ticket_operations_report.
- ``GET /api/pharmacy/analytics/status`` — no authentication, freshness only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import date

import psycopg
from flask import Blueprint, Response, g, jsonify, request
from psycopg_pool import PoolTimeout

from app import db
from app.analytics_export import (
    FULFILLMENT_COLUMNS,
    GRAINS,
    OPERATIONS_COLUMNS,
    csv_text,
    json_rows,
)
from app.api.auth import as_user, error_response
from app.queries import load_queries

blueprint = Blueprint("api_analytics", __name__)
QUERIES = load_queries("analytics.sql")


class BadRequest(Exception):
    pass


def _date(name: str) -> date:
    raw = request.args.get(name, "").strip()
    if not raw:
        raise BadRequest(f"give {name}=YYYY-MM-DD")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date YYYY-MM-DD, got {raw!r}") from None


def _params(default_grain: str) -> dict[str, object]:
    params: dict[str, object] = {"from_date": _date("from"), "to_date": _date("to")}
    if params["from_date"] > params["to_date"]:  # type: ignore[operator]
        raise BadRequest("from must not be after to")
    grain = request.args.get("grain", default_grain).strip() or default_grain
    if grain not in GRAINS:
        raise BadRequest(f"grain must be one of {', '.join(GRAINS)}, got {grain!r}")
    params["grain"] = grain
    output = request.args.get("format", "json").strip().lower() or "json"
    if output not in ("json", "csv"):
        raise BadRequest(f"format must be json or csv, got {output!r}")
    params["format"] = output
    return params


def _answer(
    name: str, params: dict[str, object], columns: Sequence[str], rows: list[tuple]
) -> Response:
    if params["format"] == "csv":
        filename = f"{name}-{params['from_date']}-{params['to_date']}-{params['grain']}.csv"
        return Response(
            csv_text(columns, rows).encode("utf-8"),
            status=200,
            headers={
                "Content-Type": "text/csv; charset=utf-8; header=present",
                "Content-Disposition": f'attachment; filename="{filename}"',
            },
        )
    # Not jsonify: it sorts keys, and the columns are easier to read in the contract's order.
    return Response(
        json.dumps({"rows": json_rows(columns, rows)}), status=200, mimetype="application/json"
    )


@blueprint.get("/api/pharmacy/analytics")
@as_user
def pharmacy_analytics():
    try:
        params = _params("day")
        raw_pharmacy = request.args.get("pharmacy_id", "").strip()
        try:
            pharmacy_id = uuid.UUID(raw_pharmacy) if raw_pharmacy else None
        except ValueError:
            raise BadRequest(f"pharmacy_id must be a uuid, got {raw_pharmacy!r}") from None
    except BadRequest as exc:
        return error_response(400, "invalid_request", str(exc))
    rows = g.conn.execute(
        f"select {', '.join(FULFILLMENT_COLUMNS)}"  # noqa: S608 (fixed column names)
        " from public.fulfillment_report(%s, %s, %s, %s)",
        [params["from_date"], params["to_date"], params["grain"], pharmacy_id],
    ).fetchall()
    return _answer("fulfillment-analytics", params, FULFILLMENT_COLUMNS, rows)


@blueprint.get("/api/operations/analytics")
@as_user
def operations_analytics():
    try:
        params = _params("week")
    except BadRequest as exc:
        return error_response(400, "invalid_request", str(exc))
    rows = g.conn.execute(
        f"select {', '.join(OPERATIONS_COLUMNS)}"  # noqa: S608 (fixed column names)
        " from public.ticket_operations_report(%s, %s, %s)",
        [params["from_date"], params["to_date"], params["grain"]],
    ).fetchall()
    return _answer("ticket-operations", params, OPERATIONS_COLUMNS, rows)


@blueprint.get("/api/pharmacy/analytics/status")
def analytics_status():
    # Monitoring needs no token and gets no data: only how fresh the rollups are.
    try:
        with db.pool().connection(timeout=2) as conn:
            row = conn.execute(QUERIES.analytics_status).fetchone()
    except (PoolTimeout, psycopg.Error):
        return error_response(
            503,
            "database_unavailable",
            "the database is unreachable; try again later",
            **{"Retry-After": "5"},
        )
    last, dirty = row if row else (None, 0)
    return jsonify(last_recompute_at=last.isoformat() if last else None, dirty_periods=int(dirty))
