"""The database connection of the operator commands (`carehub webhooks|notifications|analytics
...`): one place that finds the URL and turns a failure into one clear line."""

from __future__ import annotations

import os
import uuid
from typing import Any

import click
import psycopg


def operator_connection(database_url: str | None, **kwargs: Any) -> psycopg.Connection[Any]:
    """An autocommit connection to --database-url, else $DATABASE_URL."""
    url = database_url or os.environ.get("DATABASE_URL", "").strip()
    if not url:
        raise click.ClickException(
            "no database given: pass --database-url or set DATABASE_URL "
            "(`carehub db start` prints the local one)"
        )
    try:
        return psycopg.connect(url, autocommit=True, **kwargs)
    except psycopg.OperationalError as exc:
        raise click.ClickException(f"cannot reach the database: {exc}") from None


def parse_uuid(raw: str, what: str) -> uuid.UUID:
    """``raw`` as a UUID, or a usage error naming what was expected."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise click.BadParameter(f"{raw!r} is not a {what} (a UUID)") from None
