"""Inbound webhooks (Lifefile pharmacy status, Twilio delivery callbacks) as Flask blueprints."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register every webhook blueprint on ``app``."""
    from app.webhooks import lifefile, twilio

    lifefile.init_app(app, app.config["CAREHUB_SETTINGS"])
    twilio.init_app(app, app.config["CAREHUB_SETTINGS"])
