"""The service's one connection pool, as a Flask extension."""

from __future__ import annotations

from flask import Flask, current_app
from psycopg_pool import ConnectionPool

from app.config import Settings

EXTENSION_KEY = "carehub.pool"


def init_app(app: Flask, settings: Settings) -> None:
    # open=False + open(wait=False): the service starts (and answers /healthz with 503) even
    # while the database is unreachable; the pool keeps trying in the background.
    pool = ConnectionPool(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout,
        kwargs={"application_name": "carehub service", "connect_timeout": 5},
        open=False,
        name="carehub",
    )
    pool.open(wait=False)
    app.extensions[EXTENSION_KEY] = pool


def pool() -> ConnectionPool:
    return current_app.extensions[EXTENSION_KEY]
