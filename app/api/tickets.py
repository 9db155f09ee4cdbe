"""GET /api/tickets: the tickets the signed-in user may see (RLS decides), newest first."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from app.api.auth import as_user, error_response

blueprint = Blueprint("api_tickets", __name__)

MAX_LIMIT = 500


@blueprint.get("/api/tickets")
@as_user
def list_tickets():
    raw = request.args.get("limit", "100")
    if not raw.isdigit() or not 0 < int(raw) <= MAX_LIMIT:
        return error_response(400, "invalid_request", f"limit must be 1-{MAX_LIMIT}")
    rows = g.conn.execute(
        "select id, ticket_type, status, created_at from public.healthcare_tickets"
        " order by created_at desc, id limit %s",
        [int(raw)],
    ).fetchall()
    return jsonify(
        user_id=g.claims["sub"],
        tickets=[
            {"id": str(r[0]), "ticket_type": r[1], "status": r[2], "created_at": r[3].isoformat()}
            for r in rows
        ],
    )
