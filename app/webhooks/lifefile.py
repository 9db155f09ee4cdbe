"""POST /api/webhooks/lifefile/prescription-status: Lifefile's pharmacy status pushes.

The request is authenticated (see lifefile_auth), split into events, and stored in the inbox
private.lifefile_webhook_events by one SQL call whose commit comes before any 2xx; the worker
processes the events from there. Responses:

    202 stored          200 duplicate (already stored; nothing new)
    400 not JSON, or not a known shape (stored as 'invalid' for operators)
    401 bad or missing credentials (nothing stored; logged and counted)
    413 body over 256 KiB     415 not JSON content     429 over the per-client rate
    503 not configured, or the database is unreachable (Lifefile retries)

GET on the same path is the health check Lifefile's endpoint test calls.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import psycopg
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from app import db
from app.config import RateLimit, Settings
from app.health import FEATURES_KEY
from app.queries import load_queries
from app.webhooks.lifefile_auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, authenticate

PATH = "/api/webhooks/lifefile/prescription-status"
MAX_BODY_BYTES = 256 * 1024
EXTENSION_KEY = "carehub.lifefile"
MISSING_SETTINGS = "set LIFEFILE_WEBHOOK_SECRET or LIFEFILE_BASIC_AUTH"

# Headers never stored with an event: credentials, and anything named like one.
_SECRET_HEADER = re.compile(r"authorization|cookie|secret|token|password|api-key", re.IGNORECASE)

blueprint = Blueprint("lifefile_webhook", __name__)
log = logging.getLogger(__name__)
queries = load_queries("lifefile.sql")


class RateLimiter:
    """Token buckets per client address, in this process (each server process has its own)."""

    def __init__(self, limit: RateLimit, max_clients: int = 10_000):
        self.rate = limit.per_second
        self.capacity = float(limit.count)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> tuple[bool, float]:
        """Take one token for ``client``; when refused, also say how long until the next."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)  # forget the least recently seen client
        return allowed, 0.0 if allowed else (1.0 - tokens) / self.rate


@dataclass
class LifefileState:
    settings: Settings
    limiter: RateLimiter | None
    unauthorized: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    waker: WorkerWaker = field(default_factory=lambda: WorkerWaker())

    def count_unauthorized(self) -> int:
        with self.lock:
            self.unauthorized += 1
            return self.unauthorized


def init_app(app: Flask, settings: Settings) -> None:
    limiter = RateLimiter(settings.lifefile_rate_limit) if settings.lifefile_rate_limit else None
    app.extensions[EXTENSION_KEY] = LifefileState(settings, limiter)
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
    decoder = json.JSONDecoder(parse_constant=_refuse_constant)
    try:
        value = decoder.decode(text)
    except ValueError as exc:
        return None, f"the body is not valid JSON: {exc}"
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

    client = request.remote_addr or "unknown"
    if state.limiter is not None:
        allowed, wait = state.limiter.allow(client)
        if not allowed:
            response, status = _error(429, "too many requests", "slow down and retry")
            response.headers["Retry-After"] = str(max(1, round(wait + 0.5)))
            return response, status

    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        return _error(413, "too large", f"the body may be at most {MAX_BODY_BYTES} bytes")

    result = authenticate(
        secrets=settings.lifefile_webhook_secrets,
        basic=settings.lifefile_basic_auth,
        body=body,
        signature=request.headers.get(SIGNATURE_HEADER),
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        authorization=request.headers.get("Authorization"),
    )
    if not result.ok:
        count = state.count_unauthorized()
        log.warning(
            "lifefile webhook: refused a request from %s: %s (%d refused by this process)",
            client,
            result.reason,
            count,
        )
        response, status = _error(401, "unauthorized", result.reason)
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
        rows = _store(params)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        log.error("lifefile webhook: inbox unreachable, answering 503: %s", exc)
        response, status = _error(
            503, "unavailable", "the inbox is unreachable; retry later (nothing was stored)"
        )
        response.headers["Retry-After"] = "30"
        return response, status

    summary = [{"id": str(r[0]), "status": r[1], "duplicate": r[2]} for r in rows]
    invalid = [r for r in rows if r[1] == "invalid"]
    if invalid:
        log.warning("lifefile webhook: stored invalid event %s: %s", invalid[0][0], invalid[0][3])
        return _error(400, "invalid", invalid[0][3], event_id=str(invalid[0][0]))
    if all(r[2] for r in rows):
        return jsonify(status="duplicate", events=summary), 200
    return jsonify(status="accepted", events=summary), 202


def _store(params: dict[str, object]) -> list[tuple]:
    """Insert the delivery and commit. Retried once on a broken pooled connection (after a
    database restart the pool holds dead ones): storing is idempotent by dedupe key."""
    pool = db.pool()
    for attempt in (1, 2):
        try:
            with pool.connection() as conn:
                # Autocommit: one round trip stores and commits (the commit comes before any
                # 2xx); the connection goes back to the pool as it came.
                conn.autocommit = True
                try:
                    rows = conn.execute(queries.receive_lifefile_delivery, params).fetchall()
                finally:
                    if not conn.closed:
                        conn.autocommit = False
            if any(row[1] == "pending" and not row[2] for row in rows):
                _state().waker.wake()
            return rows
        except psycopg.OperationalError:
            if attempt == 2:
                raise
            pool.check()  # drop every dead idle connection before the retry
    raise AssertionError("unreachable")


class WorkerWaker:
    """NOTIFYs the worker that events wait, from a thread of this process, at most once per
    ``interval`` however many deliveries arrive, and always after the latest one.

    Not in the storing transaction: a transaction that notifies holds a database-wide lock
    through its commit's WAL flush, so concurrent deliveries would commit one at a time. If a
    notification is lost, the worker's periodic sweep still finds the events.
    """

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self._pending = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    def wake(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                # Started on first use, in the serving process (gunicorn forks before that).
                self._pool = db.pool()
                self._thread = threading.Thread(
                    target=self._run, name="lifefile-waker", daemon=True
                )
                self._thread.start()
        self._pending.set()

    def _run(self) -> None:
        assert self._pool is not None
        while True:
            self._pending.wait()
            self._pending.clear()
            try:
                with self._pool.connection(timeout=2) as conn:
                    conn.execute(queries.wake_lifefile_worker)
            except Exception as exc:  # a thread of its own: nobody else would see it
                log.warning("lifefile webhook: could not wake the worker (its sweep will): %s", exc)
            time.sleep(self.interval)
