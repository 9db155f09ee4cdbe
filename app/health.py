"""GET /healthz: 200 when the database answers, 503 otherwise."""

from __future__ import annotations

import logging

import psycopg
from flask import Blueprint, jsonify
from psycopg_pool import PoolTimeout

from app import db

blueprint = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@blueprint.get("/healthz")
def healthz():
    try:
        with db.pool().connection(timeout=2) as conn:
            conn.execute("select 1")
    except (PoolTimeout, psycopg.Error) as exc:
        log.warning("health check: database unreachable: %s", exc)
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok"), 200
