"""GET /healthz: 200 when the database answers, 503 otherwise; also what each optional
feature (a webhook, say) says about itself: enabled, or disabled and which setting is missing."""

from __future__ import annotations

import logging

import psycopg
from flask import Blueprint, current_app, jsonify
from psycopg_pool import PoolTimeout

from app import db

blueprint = Blueprint("health", __name__)
log = logging.getLogger(__name__)

# Features register their state here at start-up: {"lifefile_webhook": "enabled (...)"}.
FEATURES_KEY = "carehub.features"


@blueprint.get("/healthz")
def healthz():
    features = dict(current_app.extensions.get(FEATURES_KEY, {}))
    try:
        with db.pool().connection(timeout=2) as conn:
            conn.execute("select 1")
    except (PoolTimeout, psycopg.Error) as exc:
        log.warning("health check: database unreachable: %s", exc)
        return jsonify(status="unavailable", database="unreachable", features=features), 503
    return jsonify(status="ok", database="ok", features=features), 200
