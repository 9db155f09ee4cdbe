"""Inbound webhooks (Lifefile pharmacy status, Twilio delivery callbacks) as Flask blueprints."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register every webhook blueprint on ``app``."""
