"""`carehub notifications ...` and `carehub twilio reconcile`: what operators do with the outbox.

carehub notifications list [--status S] [--ticket ID]   newest deliveries
carehub notifications show ID                           one delivery, everything stored
carehub notifications retry ID | --status failed        queue again now
carehub notifications cancel ID                         cancel one not yet handed to Twilio
carehub notifications send-test --to +1... --channel sms|whatsapp
                                                        send one test message now
carehub twilio reconcile [--since 24h]                  fetch final statuses from Twilio
carehub webhooks list --provider twilio                 the Twilio inbox (lifefile: default)
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC

import click
import psycopg
from psycopg.rows import dict_row

from app.config import ConfigError, Settings
from app.operator_db import operator_connection, parse_uuid
from app.queries import load_queries

queries = load_queries("messaging.sql")
STATUSES = (
    "queued",
    "scheduled",
    "sending",
    "sent",
    "delivered",
    "read",
    "undelivered",
    "failed",
    "suppressed",
    "cancelled",
)
TWILIO_INBOX_STATUSES = ("pending", "processed", "ignored", "failed")


def _connect(database_url: str | None) -> psycopg.Connection:
    return operator_connection(database_url, row_factory=dict_row)


def _uuid(raw: str, what: str = "delivery id") -> uuid.UUID:
    return parse_uuid(raw, what)


@click.group()
@click.option("--database-url", help="The database (default: $DATABASE_URL).")
@click.pass_context
def notifications(ctx: click.Context, database_url: str | None) -> None:
    """The notification outbox: list, show, retry, cancel, send a test message."""
    ctx.obj = {"database_url": database_url}


@notifications.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only deliveries with this status.")
@click.option("--ticket", "ticket_id", help="Only deliveries about this ticket.")
@click.option("--limit", default=50, show_default=True, help="How many (newest first).")
@click.pass_obj
def list_deliveries(
    obj: dict[str, str | None], status: str | None, ticket_id: str | None, limit: int
) -> None:
    """The newest deliveries (what was, or would be, sent)."""
    ticket = _uuid(ticket_id, "ticket id") if ticket_id else None
    with _connect(obj["database_url"]) as conn:
        rows = conn.execute(
            queries.list_notification_deliveries,
            {"status": status, "ticket_id": ticket, "max_rows": limit},
        ).fetchall()
    if not rows:
        click.echo("no deliveries" + (f" with status {status}" if status else ""))
        return
    click.echo(
        f"{'id':36}  {'created (UTC)':19}  {'status':11}  {'channel':8}  {'event':26}  "
        f"{'to':22}  {'not before (UTC)':19}  note"
    )
    for row in rows:
        created = row["created_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        due = row["not_before"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        note = row["suppressed_reason"] or (
            f"error {row['error_code']}" if row["error_code"] else ""
        )
        click.echo(
            f"{row['id']!s:36}  {created:19}  {row['status']:11}  {row['channel']:8}  "
            f"{row['event']:26}  {row['address'] or '-':22}  {due:19}  {note}"
        )


@notifications.command("show")
@click.argument("delivery_id")
@click.pass_obj
def show_delivery(obj: dict[str, str | None], delivery_id: str) -> None:
    """One delivery: its rule, recipient, body, Twilio sid and every time and error."""
    with _connect(obj["database_url"]) as conn:
        row = conn.execute(
            queries.show_notification_delivery, {"id": _uuid(delivery_id)}
        ).fetchone()
    if row is None:
        raise click.ClickException(f"no delivery {delivery_id}")
    for key, value in row.items():
        click.echo(f"{key:20} {value if value is not None else '-'}")


@notifications.command("retry")
@click.argument("delivery_id", required=False)
@click.option("--status", type=click.Choice(["failed", "undelivered", "suppressed", "cancelled"]))
@click.pass_obj
def retry(obj: dict[str, str | None], delivery_id: str | None, status: str | None) -> None:
    """Queue one delivery, or every delivery of one status, again now."""
    if bool(delivery_id) == bool(status):
        raise click.UsageError("give a delivery id or --status, not both")
    with _connect(obj["database_url"]) as conn:
        if delivery_id:
            rows = conn.execute(
                queries.retry_notification_delivery, {"id": _uuid(delivery_id)}
            ).fetchall()
            if not rows:
                raise click.ClickException(
                    f"delivery {delivery_id} is not failed, undelivered, suppressed or cancelled"
                )
        else:
            rows = conn.execute(
                queries.retry_notification_deliveries, {"status": status}
            ).fetchall()
    for row in rows:
        click.echo(f"{row['id']}  {row['status']}")
    click.echo(f"{len(rows)} delivery(ies) queued again")


@notifications.command("cancel")
@click.argument("delivery_id")
@click.pass_obj
def cancel(obj: dict[str, str | None], delivery_id: str) -> None:
    """Cancel a delivery that is queued or scheduled (not yet handed to Twilio)."""
    with _connect(obj["database_url"]) as conn:
        row = conn.execute(
            queries.cancel_notification_delivery, {"id": _uuid(delivery_id)}
        ).fetchone()
    if row is None:
        raise click.ClickException(f"delivery {delivery_id} is not queued or scheduled")
    click.echo(f"{row['id']}  {row['status']}")


def _settings() -> Settings:
    try:
        return Settings.from_env(
            {**os.environ, "DATABASE_URL": os.environ.get("DATABASE_URL") or "postgresql://unset"}
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@notifications.command("send-test")
@click.option("--to", "to", required=True, help="An E.164 number, e.g. +15551234567.")
@click.option("--channel", type=click.Choice(["sms", "whatsapp"]), default="sms", show_default=True)
@click.option("--body", default="carehub test message: no reply needed.", show_default=True)
def send_test(to: str, channel: str, body: str) -> None:
    """Send one message now with the configured Twilio settings (no outbox row)."""
    from twilio.base.exceptions import TwilioRestException

    from app.twilio_client import make_client

    if not re.fullmatch(r"\+[1-9][0-9]{6,14}", to):
        raise click.BadParameter(f"{to!r} is not an E.164 number (+ and 7-15 digits)")
    settings = _settings()
    client = make_client(settings)
    if client is None:
        raise click.ClickException(
            "Twilio is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        )
    params: dict[str, str] = {"body": body}
    if channel == "whatsapp":
        if not settings.twilio_whatsapp_from:
            raise click.ClickException("set TWILIO_WHATSAPP_FROM to send WhatsApp messages")
        params.update(to="whatsapp:" + to, from_=settings.twilio_whatsapp_from)
    elif settings.twilio_messaging_service_sid:
        params.update(to=to, messaging_service_sid=settings.twilio_messaging_service_sid)
    elif settings.twilio_phone_number:
        params.update(to=to, from_=settings.twilio_phone_number)
    else:
        raise click.ClickException("set TWILIO_PHONE_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
    try:
        message = client.messages.create(**params)
    except TwilioRestException as exc:
        raise click.ClickException(f"Twilio refused it: error {exc.code}: {exc.msg}") from None
    click.echo(f"{message.sid}  {message.status}")


@click.group("twilio")
@click.option("--database-url", help="The database (default: $DATABASE_URL).")
@click.pass_context
def twilio_group(ctx: click.Context, database_url: str | None) -> None:
    """Twilio: reconcile message statuses."""
    ctx.obj = {"database_url": database_url}


@twilio_group.command("reconcile")
@click.option("--since", default="24h", show_default=True, help="How far back: 24h, 3d, 90m.")
@click.pass_obj
def reconcile_command(obj: dict[str, str | None], since: str) -> None:
    """Fetch from Twilio the final status of messages still not final (the worker does it
    daily too)."""
    from app.jobs.messaging import reconcile
    from app.twilio_client import make_client

    match = re.fullmatch(r"(\d+)\s*([mhd])", since.strip())
    if not match:
        raise click.BadParameter(f"{since!r}: give a number and m, h or d (e.g. 24h)")
    interval = f"{match[1]} { {'m': 'minutes', 'h': 'hours', 'd': 'days'}[match[2]] }"
    client = make_client(_settings())
    if client is None:
        raise click.ClickException(
            "Twilio is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        )
    with _connect(obj["database_url"]) as conn:
        changed = reconcile(conn, client, interval)
    click.echo(f"{changed} delivery(ies) moved forward")


def add_provider_option(webhooks: click.Group) -> None:
    """Give `carehub webhooks list` a --provider option (lifefile, the default, or twilio)."""
    original = webhooks.commands["list"]

    @click.command("list")
    @click.option(
        "--provider",
        type=click.Choice(["lifefile", "twilio"]),
        default="lifefile",
        show_default=True,
        help="Whose inbox.",
    )
    @click.option("--status", help="Only events with this status.")
    @click.option("--limit", default=50, show_default=True, help="How many (newest first).")
    @click.pass_context
    def list_events(ctx: click.Context, provider: str, status: str | None, limit: int) -> None:
        """The newest inbox events of one provider."""
        if provider == "lifefile":
            from app.webhooks.lifefile_cli import STATUSES as LIFEFILE_STATUSES

            if status and status not in LIFEFILE_STATUSES:
                raise click.BadParameter(
                    f"lifefile inbox statuses: {', '.join(LIFEFILE_STATUSES)}",
                    param_hint="--status",
                )
            ctx.invoke(original, status=status, limit=limit)
            return
        if status and status not in TWILIO_INBOX_STATUSES:
            raise click.BadParameter(f"twilio inbox statuses: {', '.join(TWILIO_INBOX_STATUSES)}")
        with _connect(ctx.obj["database_url"]) as conn:
            rows = conn.execute(
                queries.list_twilio_events, {"status": status, "max_rows": limit}
            ).fetchall()
        if not rows:
            click.echo("no events" + (f" with status {status}" if status else ""))
            return
        click.echo(
            f"{'id':36}  {'received (UTC)':19}  {'kind':7}  {'status':9}  {'message sid':34}  "
            f"{'twilio status':13}  note"
        )
        for row in rows:
            received = row["received_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
            click.echo(
                f"{row['id']!s:36}  {received:19}  {row['kind']:7}  {row['status']:9}  "
                f"{row['message_sid'] or '-':34}  {row['message_status'] or '-':13}  "
                f"{(row['note'] or '')[:60]}"
            )

    webhooks.add_command(list_events)
