"""`carehub webhooks ...`: what operators do with the Lifefile inbox.

carehub webhooks list [--status S]        newest events (all, or of one status)
carehub webhooks show ID                  one event: headers, body, error, history
carehub webhooks replay ID                process one event again now
carehub webhooks replay --status S        ... every unmatched, unmapped or failed event
carehub webhooks send-test --status shipped --order ORDER
                                          sign a sample event and post it to the service
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from base64 import b64encode
from datetime import UTC, datetime

import click
import psycopg
from psycopg.rows import dict_row

from app.operator_db import operator_connection, parse_uuid
from app.queries import load_queries
from app.webhooks.lifefile import PATH
from app.webhooks.lifefile_auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

queries = load_queries("lifefile.sql")

STATUSES = ("pending", "processed", "unmatched", "unmapped", "invalid", "failed")
REPLAYABLE = ("unmatched", "unmapped", "failed")

# Ticket status names that Lifefile spells otherwise (the rest are the same, upper-cased).
LIFEFILE_SPELLING = {
    "sent": "SENT_TO_PHARMACY",
    "ready": "READY_FOR_PICKUP",
    "completed": "PICKED_UP",
}


def _connect(database_url: str | None) -> psycopg.Connection:
    return operator_connection(database_url, row_factory=dict_row)


def _event_id(raw: str) -> uuid.UUID:
    return parse_uuid(raw, "event id")


@click.group()
@click.option("--database-url", help="The database (default: $DATABASE_URL).")
@click.pass_context
def webhooks(ctx: click.Context, database_url: str | None) -> None:
    """The Lifefile webhook inbox: list, show, replay, send a test event."""
    ctx.obj = {"database_url": database_url}


@webhooks.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only events with this status.")
@click.option("--limit", default=50, show_default=True, help="How many (newest first).")
@click.pass_obj
def list_events(obj: dict[str, str | None], status: str | None, limit: int) -> None:
    """The newest inbox events."""
    with _connect(obj["database_url"]) as conn:
        rows = conn.execute(
            queries.list_lifefile_events, {"status": status, "max_rows": limit}
        ).fetchall()
    if not rows:
        click.echo("no events" + (f" with status {status}" if status else ""))
        return
    click.echo(
        f"{'id':36}  {'received (UTC)':19}  {'status':9}  {'tries':>5}  {'order':14}  "
        f"{'rx':12}  {'lifefile status':20}  error"
    )
    for row in rows:
        received = row["received_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        error = (row["last_error"] or "")[:60]
        click.echo(
            f"{row['id']!s:36}  {received:19}  {row['status']:9}  {row['attempts']:>5}  "
            f"{row['order_id'] or '-':14}  {row['rx_number'] or '-':12}  "
            f"{row['external_status'] or '-':20}  {error}"
        )


@webhooks.command("show")
@click.argument("event_id")
@click.pass_obj
def show_event(obj: dict[str, str | None], event_id: str) -> None:
    """Everything stored about one event, and the history row it produced."""
    with _connect(obj["database_url"]) as conn:
        row = conn.execute(queries.show_lifefile_event, {"id": _event_id(event_id)}).fetchone()
        if row is None:
            raise click.ClickException(f"no Lifefile webhook event {event_id}")
        history = conn.execute(queries.lifefile_event_history, {"id": row["id"]}).fetchall()
    for key, value in row.items():
        if key in ("headers", "body"):
            continue
        click.echo(f"{key:16} {'' if value is None else value}")
    click.echo("headers:")
    for name, value in sorted(row["headers"].items()):
        click.echo(f"  {name}: {value}")
    click.echo("body:")
    try:
        click.echo(json.dumps(json.loads(row["body"]), indent=2, ensure_ascii=False))
    except ValueError:
        click.echo(row["body"])
    for entry in history:
        click.echo(
            f"history: {entry['previous_status']} -> {entry['status']} at "
            f"{entry['occurred_at']}; {'moved the ticket' if entry['applied'] else entry['note']}"
        )


@webhooks.command("replay")
@click.argument("event_id", required=False)
@click.option("--status", type=click.Choice(REPLAYABLE), help="Replay every event so marked.")
@click.pass_obj
def replay(obj: dict[str, str | None], event_id: str | None, status: str | None) -> None:
    """Process an event (or every unmatched, unmapped or failed one) again, now."""
    if event_id is None and status is None:
        raise click.UsageError("give an event id or --status")
    if event_id is not None and status is not None:
        raise click.UsageError("give an event id or --status, not both")
    with _connect(obj["database_url"]) as conn:
        try:
            if event_id is not None:
                row = conn.execute(
                    queries.replay_lifefile_event, {"id": _event_id(event_id)}
                ).fetchone()
                results = [(event_id, row["replay_lifefile_event"] if row else None)]
            else:
                rows = conn.execute(queries.replay_lifefile_events, {"status": status}).fetchall()
                results = [(str(r["event_id"]), r["event_status"]) for r in rows]
        except psycopg.Error as exc:
            diag = exc.diag
            raise click.ClickException(
                f"{diag.message_primary or exc}"
                + (f" ({diag.message_hint})" if diag.message_hint else "")
            ) from None
    if not results:
        click.echo(f"no {status} events")
    for replayed, result in results:
        click.echo(f"{replayed}: {result}")
    if any(result != "processed" for _, result in results):
        click.echo("(see `carehub webhooks show ID` for why an event was not processed)")


@webhooks.command("send-test")
@click.option("--status", "status", required=True, help="e.g. shipped, delivered, Fulfillment.")
@click.option("--order", "order_id", required=True, help="Lifefile order id of the prescription.")
@click.option("--rx", "rx_number", help="Its rx number.")
@click.option("--tracking-number", help="A carrier tracking number to include.")
@click.option("--carrier", default="UPS", show_default=True)
@click.option(
    "--url",
    default=lambda: f"http://127.0.0.1:{os.environ.get('PORT', '8000')}{PATH}",
    show_default="the local service on $PORT (8000)",
)
@click.option("--secret", help="Signing secret (default: the first of $LIFEFILE_WEBHOOK_SECRET).")
def send_test(
    status: str,
    order_id: str,
    rx_number: str | None,
    tracking_number: str | None,
    carrier: str,
    url: str,
    secret: str | None,
) -> None:
    """Sign a sample status event and post it to the service, as Lifefile would."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    prescription = {"orderId": order_id, "medicationName": "Test Medication", "quantity": 30}
    if rx_number:
        prescription["rxNumber"] = rx_number
    payload = {
        "eventType": "prescription.status.update",
        "timestamp": now,
        "prescription": prescription,
        "status": {
            "current": LIFEFILE_SPELLING.get(status.lower(), status.upper()),
            "changedAt": now,
        },
    }
    if tracking_number:
        payload["tracking"] = {"trackingNumber": tracking_number, "carrier": carrier}
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "carehub send-test"}
    secrets = [s.strip() for s in os.environ.get("LIFEFILE_WEBHOOK_SECRET", "").split(",")]
    secret = secret or next((s for s in secrets if s), None)
    basic = os.environ.get("LIFEFILE_BASIC_AUTH", "").strip()
    if secret:
        timestamp = str(int(time.time()))
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = "sha256=" + sign(secret, body, timestamp)
    elif basic:
        headers["Authorization"] = "Basic " + b64encode(basic.encode()).decode()
    else:
        raise click.ClickException(
            "nothing to sign with: pass --secret or set LIFEFILE_WEBHOOK_SECRET "
            "(or LIFEFILE_BASIC_AUTH) as the service has it"
        )
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    click.echo(f"POST {url}\n{json.dumps(payload, indent=2)}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            code, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        code, text = exc.code, exc.read().decode(errors="replace")
    except urllib.error.URLError as exc:
        raise click.ClickException(
            f"cannot reach {url}: {exc.reason} (is `carehub run` up?)"
        ) from None
    click.echo(f"-> {code} {text.strip()}")
    sys.exit(0 if 200 <= code < 300 else 1)
