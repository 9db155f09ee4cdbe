"""POST /api/webhooks/lifefile/prescription-status: Lifefile's pharmacy status pushes.

The request goes through the shared inbox path (app/webhooks/inbox.py): authenticated (see
lifefile_auth), rate-limited per kind (signed, refused) and client in the database, split into
events, and stored in the inbox private.lifefile_webhook_events by one SQL call whose commit
comes before any 2xx; the worker processes the events from there. Responses:

    202 stored          200 duplicate (already stored; nothing new)
    400 not JSON, or not a known shape (stored as 'invalid' for operators)
    401 bad, malformed or missing credentials (nothing stored; logged and counted)
    413 body over 256 KiB     415 not JSON content     429 over the client's rate (per kind)
    503 not configured, or the database is unreachable (Lifefile retries)

GET on the same path is the health check Lifefile's endpoint test calls.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field

import psycopg
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from psycopg.types.json import Jsonb
from psycopg_pool import PoolTimeout

from app import db
from app.config import Settings
from app.health import FEATURES_KEY
from app.queries import load_queries
from app.webhooks import inbox
from app.webhooks.lifefile_auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, authenticate

PATH = "/api/webhooks/lifefile/prescription-status"
MAX_BODY_BYTES = 256 * 1024
EXTENSION_KEY = "carehub.lifefile"
MISSING_SETTINGS = "set LIFEFILE_WEBHOOK_SECRET or LIFEFILE_BASIC_AUTH"
CHANNEL = "lifefile_webhook_events"
# What a refused request is told: the reason (a stale timestamp would tell our clock) is logged.
REFUSED_DETAIL = (
    "bad, malformed or missing credentials: sign the raw body with the shared secret "
    "(x-lifefile-signature, with a current x-lifefile-timestamp if you send one) or use Basic"
)

# Headers never stored with an event: credentials, and anything named like one.
_SECRET_HEADER = re.compile(r"authorization|cookie|secret|token|password|api-key", re.IGNORECASE)

blueprint = Blueprint("lifefile_webhook", __name__)
log = logging.getLogger(__name__)
queries = load_queries("lifefile.sql")
INBOX = inbox.Inbox(
    provider="lifefile",
    channel=CHANNEL,
    store_query=queries.receive_lifefile_delivery,
    process_query=queries.process_lifefile_events,
)


@dataclass
class LifefileState:
    settings: Settings
    refused_here: inbox.LocalBuckets | None = None
    unauthorized: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    waker: inbox.WorkerWaker = field(default_factory=lambda: inbox.WorkerWaker(CHANNEL))

    def count_unauthorized(self) -> int:
        with self.lock:
            self.unauthorized += 1
            return self.unauthorized


def init_app(app: Flask, settings: Settings) -> None:
    refused_limit = settings.lifefile_unauthenticated_rate_limit
    app.extensions[EXTENSION_KEY] = LifefileState(
        settings, inbox.LocalBuckets(refused_limit) if refused_limit else None
    )
    features = app.extensions.setdefault(FEATURES_KEY, {})
    if settings.lifefile_configured:
        methods = auth_methods(settings)
        features["lifefile_webhook"] = f"enabled ({', '.join(methods)})"
    else:
        features["lifefile_webhook"] = f"disabled: not configured ({MISSING_SETTINGS})"
        log.warning(
            "Lifefile webhook disabled: neither LIFEFILE_WEBHOOK_SECRET nor LIFEFILE_BASIC_AUTH "
            "is set; %s answers 503 until one is",
            PATH,
        )
    app.register_blueprint(blueprint)


def auth_methods(settings: Settings) -> list[str]:
    methods = []
    if settings.lifefile_webhook_secrets:
        methods.append("hmac-sha256")
    if settings.lifefile_basic_auth:
        methods.append("basic")
    return methods


def _state() -> LifefileState:
    return current_app.extensions[EXTENSION_KEY]


def split_events(text: str) -> tuple[list[str] | None, str | None]:
    """Split a body into its events' raw texts.

    Returns ``(None, None)`` for one JSON object (the body is the event), ``(texts, None)`` for
    a JSON array (each element's exact text), ``(None, reason)`` when the body is not JSON or
    neither an object nor an array.
    """
    if _too_deep(text):
        return None, f"the body is nested more than {MAX_DEPTH} levels deep"
    decoder = json.JSONDecoder(parse_constant=_refuse_constant)
    try:
        value = decoder.decode(text)
    except ValueError as exc:
        return None, f"the body is not valid JSON: {exc}"
    except RecursionError:
        return None, f"the body is nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, dict):
        return None, None
    if not isinstance(value, list):
        return None, f"the body is a JSON {type(value).__name__}, not an object or an array"
    texts: list[str] = []
    at = _skip_space(text, _skip_space(text, 0) + 1)  # after '['
    while text[at] != "]":
        _element, end = decoder.raw_decode(text, at)
        texts.append(text[at:end])
        at = _skip_space(text, end)
        if text[at] == ",":
            at = _skip_space(text, at + 1)
    return texts, None


# Far deeper than any Lifefile event, far shallower than the parser's recursion limit (and
# PostgreSQL's jsonb stack depth).
MAX_DEPTH = 64
# Every character belongs to one token (a string, terminated or not; a bracket; a run of
# anything else), so the scan never starts again inside a string: linear in the body's length.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]|[^"\[\]{}]+')


def _too_deep(text: str) -> bool:
    """Whether brackets outside strings nest deeper than MAX_DEPTH (one linear scan, before any
    recursive parser sees the text)."""
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        found = match.group()
        if found in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif found in ("]", "}"):
            depth -= 1
    return False


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


_SPACE = re.compile(r"[ \t\n\r]*")


def _skip_space(text: str, at: int) -> int:
    match = _SPACE.match(text, at)
    return match.end() if match else at


def stored_headers() -> dict[str, str]:
    return {
        name.lower(): value
        for name, value in request.headers.items()
        if not _SECRET_HEADER.search(name)
    }


def _error(status: int, error: str, detail: str, **extra: object) -> tuple[Response, int]:
    return jsonify(error=error, detail=detail, **extra), status


@blueprint.get(PATH)
def health() -> tuple[Response, int]:
    """Lifefile's endpoint test: are we configured and is the inbox reachable? No data."""
    state = _state()
    if not state.settings.lifefile_configured:
        return _error(503, "not configured", f"the webhook is disabled: {MISSING_SETTINGS}")
    try:
        with db.pool().connection(timeout=2) as conn:
            conn.execute("select 1")
    except (PoolTimeout, psycopg.Error):
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(
        status="ok",
        endpoint="lifefile prescription-status",
        authentication=auth_methods(state.settings),
        database="ok",
    ), 200


@blueprint.post(PATH)
def receive() -> tuple[Response, int]:
    state = _state()
    settings = state.settings
    if not settings.lifefile_configured:
        return _error(503, "not configured", f"the webhook is disabled: {MISSING_SETTINGS}")

    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _error(413, "too large", f"the body may be at most {MAX_BODY_BYTES} bytes")
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        return _error(
            415, "unsupported media type", "send the event as Content-Type: application/json"
        )
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        return _error(413, "too large", f"the body may be at most {MAX_BODY_BYTES} bytes")

    client = inbox.client_address(
        request.remote_addr, request.headers.get("X-Forwarded-For"), settings.trusted_proxies
    )
    result = authenticate(
        secrets=settings.lifefile_webhook_secrets,
        basic=settings.lifefile_basic_auth,
        body=body,
        signature=request.headers.get(SIGNATURE_HEADER),
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        authorization=request.headers.get("Authorization"),
    )
    refusal = inbox.admit(
        INBOX,
        result.ok,
        client,
        settings.lifefile_rate_limit,
        settings.lifefile_unauthenticated_rate_limit,
        state.refused_here,
    )
    if refusal is not None:
        return refusal
    if not result.ok:
        count = state.count_unauthorized()
        log.warning(
            "lifefile webhook: refused a request from %s: %s (%d refused by this process)",
            client,
            result.reason,
            count,
        )
        response, status = _error(401, "unauthorized", REFUSED_DETAIL)
        if settings.lifefile_basic_auth:
            response.headers["WWW-Authenticate"] = 'Basic realm="lifefile"'
        return response, status

    try:
        text = body.decode("utf-8")
        events, problem = split_events(text)
    except UnicodeDecodeError as exc:
        text, events, problem = body.decode("utf-8", "replace"), None, f"not UTF-8: {exc}"
    if "\x00" in text:  # a text column cannot hold NUL; such a body is not JSON anyway
        text = text.replace("\x00", "\ufffd")
        events, problem = None, problem or "the body contains a NUL character"

    params = {
        "body": text,
        "headers": Jsonb(stored_headers()),
        "client_addr": client,
        "events": events,
        "error": problem,
    }
    try:
        rows = inbox.store_and_wake(INBOX, state.waker, params)
    except inbox.DATABASE_DOWN as exc:
        return inbox.unavailable(exc, "lifefile webhook")

    summary = [{"id": str(r[0]), "status": r[1], "duplicate": r[2]} for r in rows]
    invalid = [r for r in rows if r[1] == "invalid"]
    if invalid:
        log.warning("lifefile webhook: stored invalid event %s: %s", invalid[0][0], invalid[0][3])
        return _error(400, "invalid", invalid[0][3], event_id=str(invalid[0][0]))
    if all(r[2] for r in rows):
        return jsonify(status="duplicate", events=summary), 200
    return jsonify(status="accepted", events=summary), 202
