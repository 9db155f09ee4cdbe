"""carehub: the database-centred back end of a care-coordination product on Supabase."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from app import api, db, health, webhooks
from app.config import Settings

log = logging.getLogger("carehub")


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask service. Settings come from the environment unless given."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["CAREHUB_SETTINGS"] = settings
    db.init_app(app, settings)
    app.register_blueprint(health.blueprint)
    webhooks.init_app(app)
    api.init_app(app)  # user endpoints (JWT → RLS) and analytics
    # A JSON service answers JSON, also for a wrong path or method (Flask's pages are HTML).
    app.register_error_handler(404, _json_error)
    app.register_error_handler(405, _json_error)
    return app


def _json_error(exc: HTTPException):
    response = jsonify(
        error=(exc.name or "error").lower().replace(" ", "_"), message=exc.description
    )
    response.status_code = exc.code or 500
    allowed = getattr(exc, "valid_methods", None)
    if allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response
