"""Fulfilment and operations analytics over HTTP (filled in below)."""

from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("api_analytics", __name__)
