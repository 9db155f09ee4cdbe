"""Endpoints that act as the signed-in user (Supabase access token → RLS), and the analytics
status endpoint for monitoring."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the user endpoints on ``app``."""
    from app.api import analytics, auth, tickets

    auth.init_app(app)
    app.register_blueprint(tickets.blueprint)
    app.register_blueprint(analytics.blueprint)
