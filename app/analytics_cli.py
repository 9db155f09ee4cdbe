"""`carehub analytics ...`: what operators do with the fulfilment and operations analytics.

carehub analytics recompute [--from D] [--to D] [--pharmacy ID]   full recompute of a scope
carehub analytics export --from D --to D [--grain G] [--pharmacy ID]
                         [--report fulfillment|operations] --csv FILE   CSV (- for stdout)
carehub analytics report --from D --to D --out report.html        a self-contained HTML page

They run as the operator's database role (every pharmacy and the network rows).
"""

from __future__ import annotations

import sys
import uuid
from datetime import date
from pathlib import Path

import click
import psycopg

from app.analytics_export import FULFILLMENT_COLUMNS, GRAINS, OPERATIONS_COLUMNS, csv_text
from app.operator_db import operator_connection
from app.queries import load_queries

QUERIES = load_queries("analytics.sql")


class _Date(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date YYYY-MM-DD", param, ctx)


class _Uuid(click.ParamType):
    name = "UUID"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        try:
            return uuid.UUID(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a pharmacy id (a UUID)", param, ctx)


DATE = _Date()
UUID = _Uuid()


def _connect(ctx: click.Context) -> psycopg.Connection:
    obj = ctx.find_object(dict) or {}
    return operator_connection(obj.get("database_url"))


def _check_range(start: date | None, end: date | None) -> None:
    if start and end and start > end:
        raise click.BadParameter(f"--from {start} is after --to {end}", param_hint="--from")


def _sql_error(exc: psycopg.Error) -> click.ClickException:
    detail = exc.diag.message_primary if exc.diag else str(exc)
    return click.ClickException(f"the database refused: {detail} ({exc.sqlstate})")


@click.group()
@click.option("--database-url", help="The database (default: $DATABASE_URL).")
@click.pass_context
def analytics(ctx: click.Context, database_url: str | None) -> None:
    """Fulfilment and operations analytics: recompute, export CSV, render a report."""
    ctx.ensure_object(dict)
    if database_url:
        ctx.obj["database_url"] = database_url


@analytics.command("recompute")
@click.option("--from", "start", type=DATE, help="First local date (default: the beginning).")
@click.option("--to", "end", type=DATE, help="Last local date, inclusive (default: the end).")
@click.option("--pharmacy", "pharmacy_id", type=UUID, help="Only this pharmacy.")
@click.pass_context
def recompute(
    ctx: click.Context, start: date | None, end: date | None, pharmacy_id: uuid.UUID | None
) -> None:
    """Rebuild the facts and recompute every period of the scope (waits for the worker)."""
    _check_range(start, end)
    with _connect(ctx) as conn:
        try:
            written = conn.execute(
                QUERIES.recompute_fulfillment_analytics,
                {"from_date": start, "to_date": end, "pharmacy_id": pharmacy_id},
            ).fetchone()[0]
        except psycopg.Error as exc:
            raise _sql_error(exc) from None
    scope = f"pharmacy {pharmacy_id}" if pharmacy_id else "every pharmacy and the network"
    click.echo(
        f"recomputed {scope} from {start or 'the beginning'} to {end or 'the end'}: "
        f"{written} rollup rows written"
    )


def report_rows(
    conn: psycopg.Connection,
    report: str,
    start: date,
    end: date,
    grain: str,
    pharmacy_id: uuid.UUID | None = None,
) -> tuple[tuple[str, ...], list[tuple]]:
    if report == "operations":
        columns = OPERATIONS_COLUMNS
        query = (
            f"select {', '.join(columns)}"  # noqa: S608 (fixed column names)
            " from public.ticket_operations_report(%s, %s, %s)"
        )
        params: list[object] = [start, end, grain]
    else:
        columns = FULFILLMENT_COLUMNS
        query = (
            f"select {', '.join(columns)}"  # noqa: S608 (fixed column names)
            " from public.fulfillment_report(%s, %s, %s, %s)"
        )
        params = [start, end, grain, pharmacy_id]
    return columns, conn.execute(query, params).fetchall()


@analytics.command("export")
@click.option("--from", "start", type=DATE, required=True, help="First date.")
@click.option("--to", "end", type=DATE, required=True, help="Last date, inclusive.")
@click.option("--grain", type=click.Choice(GRAINS), default="day", show_default=True)
@click.option("--pharmacy", "pharmacy_id", type=UUID, help="Only this pharmacy (and the network).")
@click.option(
    "--report",
    type=click.Choice(("fulfillment", "operations")),
    default="fulfillment",
    show_default=True,
    help="fulfillment_report or ticket_operations_report.",
)
@click.option("--csv", "out", required=True, help="The CSV file to write (- for stdout).")
@click.pass_context
def export(
    ctx: click.Context,
    start: date,
    end: date,
    grain: str,
    pharmacy_id: uuid.UUID | None,
    report: str,
    out: str,
) -> None:
    """Write a report's rows as CSV (RFC 4180; intervals in seconds)."""
    _check_range(start, end)
    with _connect(ctx) as conn:
        try:
            columns, rows = report_rows(conn, report, start, end, grain, pharmacy_id)
        except psycopg.Error as exc:
            raise _sql_error(exc) from None
    text = csv_text(columns, rows)
    if out == "-":
        sys.stdout.buffer.write(text.encode("utf-8"))
        return
    try:
        Path(out).write_bytes(text.encode("utf-8"))
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"wrote {len(rows)} rows to {out}", err=True)


@analytics.command("report")
@click.option("--from", "start", type=DATE, required=True, help="First date.")
@click.option("--to", "end", type=DATE, required=True, help="Last date, inclusive.")
@click.option("--out", required=True, help="The HTML file to write.")
@click.pass_context
def report(ctx: click.Context, start: date, end: date, out: str) -> None:
    """Write one self-contained HTML page: charts (inline SVG) and the weekly table."""
    from app.analytics_report import render_report

    _check_range(start, end)
    with _connect(ctx) as conn:
        try:
            html = render_report(conn, start, end)
        except psycopg.Error as exc:
            raise _sql_error(exc) from None
    try:
        Path(out).write_text(html, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"wrote {out}", err=True)
