"""carehub: the database-centred back end of a care-coordination product on Supabase."""

from __future__ import annotations

import logging

from flask import Flask

from app import db, health, webhooks
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
    return app
