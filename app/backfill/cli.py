"""`carehub backfill threads` (also `python scripts/migrate_threads_to_tickets.py`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from app.backfill import BackfillError, Options, format_summary, parse_duration_ms, run
from app.config import ConfigError, check_database_url


@click.group()
def backfill() -> None:
    """One-off data migrations of the live database."""


@backfill.command("threads")
@click.option("--database-url", help="The database (default: $DATABASE_URL).")
@click.option("--dry-run", is_flag=True, help="Report what would be done; change nothing.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Threads per batch (one short transaction each).",
)
@click.option(
    "--max-batches",
    type=click.IntRange(1),
    default=None,
    help="Stop after this many batches (run again to go on).",
)
@click.option(
    "--pause-ms",
    type=click.IntRange(0, 600_000),
    default=Options.pause_ms,
    show_default=True,
    help="Pause between batches, in milliseconds.",
)
@click.option(
    "--lock-timeout",
    default="2s",
    show_default=True,
    help="Longest wait for a lock (500ms, 2s, ...); a batch waiting longer is retried.",
)
@click.option(
    "--statement-timeout",
    default="10s",
    show_default=True,
    help="Longest batch; a slower one is retried, smaller.",
)
@click.option(
    "--max-retries",
    type=click.IntRange(0, 1000),
    default=10,
    show_default=True,
    help="Tries of one batch before giving up.",
)
@click.option(
    "--report",
    "report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a CSV of every thread not migrated or migrated with a "
    "warning (thread_id, order_id, order_type, reason, detail).",
)
@click.option(
    "--progress-every",
    type=click.IntRange(1),
    default=10,
    show_default=True,
    help="When not on a terminal: a progress line every N batches.",
)
def threads(
    database_url: str | None,
    dry_run: bool,
    batch_size: int,
    max_batches: int | None,
    pause_ms: int,
    lock_timeout: str,
    statement_timeout: str,
    max_retries: int,
    report: Path | None,
    progress_every: int,
) -> None:
    """Give legacy chat threads their tickets, in batches, resumably (see the README,
    "Backfilling legacy threads")."""
    url = database_url or os.environ.get("DATABASE_URL", "").strip()
    try:
        if not url:
            raise BackfillError("no database given: pass --database-url or set DATABASE_URL")
        url = check_database_url(url, "--database-url" if database_url else "DATABASE_URL")
        options = Options(
            database_url=url,
            dry_run=dry_run,
            batch_size=batch_size,
            max_batches=max_batches,
            pause_ms=pause_ms,
            lock_timeout_ms=parse_duration_ms(lock_timeout, "--lock-timeout"),
            statement_timeout_ms=parse_duration_ms(statement_timeout, "--statement-timeout"),
            max_retries=max_retries,
            report=report,
            progress_every=progress_every,
        )
        summary = run(options, sys.stdout)
    except (BackfillError, ConfigError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo(
            "\ninterrupted: the batch in progress was rolled back; run again to resume",
            err=True,
        )
        sys.exit(130)
    click.echo(format_summary(summary, options))
