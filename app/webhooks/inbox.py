"""The one durable-inbox mechanism every webhook endpoint shares (Lifefile now; Twilio and Stripe
next): who the client is, the rate limits, storing before the 2xx, waking the worker.

An endpoint's view does, in this order (see lifefile.receive):

1. refuse what is too large or not the provider's content type (no work spent on it);
2. read the body and authenticate it — the provider's own scheme (HMAC, Basic, Twilio's or
   Stripe's signature), a pure function of the body and headers;
3. take a token from the rate limit of its kind: signed requests and refused ones have budgets
   of their own per client address, so junk never uses up a genuine sender's; the buckets live
   in the database (private.take_webhook_token), so the limits hold across server processes;
4. store the delivery with the provider's SQL function in one autocommit call (deduplicated by
   the provider's dedupe key), so the commit comes before any 2xx;
5. wake the worker (NOTIFY on the provider's channel, from a thread, outside the storing
   transaction); processing and replay are SQL functions of the provider.

Each provider keeps its own inbox table (private.<provider>_webhook_events): its events have
their own columns, indexes, dedupe key and processing function, and one provider's backlog or
retry storm never bloats or locks another's queue. What they share is this code path, the rate
limit table and the worker's job loop.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from flask import Response, jsonify
from psycopg_pool import ConnectionPool, PoolTimeout

from app import db
from app.config import RateLimit
from app.queries import load_queries

log = logging.getLogger(__name__)
queries = load_queries("webhooks.sql")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(
    remote_addr: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the nearest
    address in X-Forwarded-For that is not a trusted proxy (addresses further left were written
    by the client itself and prove nothing)."""
    peer = remote_addr or "unknown"
    if not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop if _is_address(hop) else peer
    return hops[0] if hops and _is_address(hops[0]) else peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_trusted(text: str, trusted: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return any(address in network for network in trusted)


@dataclass(frozen=True)
class Inbox:
    """One provider's inbox, as the shared path and the worker see it."""

    provider: str  # "lifefile": names its rate-limit buckets and its log lines
    channel: str  # the NOTIFY channel its worker job listens on
    store_query: str  # stores one delivery: rows (event id, status, duplicate, error)
    process_query: str  # processes up to %(batch_size)s due events; returns how many


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: float = 0.0


class LocalBuckets:
    """Token buckets per client in this process, in front of the shared ones for refused
    requests: with the same limit, a client this process alone has seen over it is over it
    everywhere, so a junk flood is answered 429 without a database round trip (and never
    takes the pool connections genuine deliveries need)."""

    def __init__(self, limit: RateLimit, max_clients: int = 10_000):
        self.rate = limit.per_second
        self.capacity = float(limit.count)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, client: str, now: float | None = None) -> RateDecision:
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
        return RateDecision(allowed, 0.0 if allowed else (1.0 - tokens) / self.rate)


def take_token(bucket: str, limit: RateLimit | None) -> RateDecision:
    """One token from the shared bucket ``bucket`` (one autocommit call); ``limit`` None means
    unlimited. Raises what the pool raises when the database is unreachable."""
    if limit is None:
        return RateDecision(True)
    with db.pool().connection() as conn:
        conn.autocommit = True
        try:
            row = conn.execute(
                queries.take_webhook_token,
                {
                    "bucket": bucket,
                    "capacity": float(limit.count),
                    "per_second": limit.per_second,
                },
            ).fetchone()
        finally:
            if not conn.closed:
                conn.autocommit = False
    assert row is not None
    return RateDecision(bool(row[0]), float(row[1] or 0.0))


def admit(
    spec: Inbox,
    authenticated: bool,
    client: str,
    signed_limit: RateLimit | None,
    refused_limit: RateLimit | None,
    refused_here: LocalBuckets | None = None,
) -> tuple[Response, int] | None:
    """Take a token from the budget of the request's kind (signed, refused) for ``client``;
    the response to send instead (429, or 503 for a signed request when the database is
    unreachable), or None to go on. A refused request goes on to its 401 without a budget when
    the database is unreachable: it is refused anyway. ``refused_here`` (this process's buckets
    with ``refused_limit``) answers a junk flood before the database is asked."""
    kind, limit = ("signed", signed_limit) if authenticated else ("refused", refused_limit)
    if not authenticated and refused_here is not None:
        local = refused_here.allow(client)
        if not local.allowed:
            return too_many_requests(local)
    try:
        decision = take_token(f"{spec.provider}:{kind}:{client}", limit)
    except DATABASE_DOWN as exc:
        return unavailable(exc, f"{spec.provider} webhook") if authenticated else None
    return None if decision.allowed else too_many_requests(decision)


def store_and_wake(spec: Inbox, waker: WorkerWaker, params: dict[str, object]) -> list[tuple]:
    """Store one delivery (committed on return) and wake the worker when it added an event to
    process. Raises DATABASE_DOWN errors (the caller answers 503)."""
    rows = store(spec.store_query, params)
    if any(row[1] == "pending" and not row[2] for row in rows):
        waker.wake()
    return rows


def error(status: int, name: str, detail: str, **extra: object) -> tuple[Response, int]:
    return jsonify(error=name, detail=detail, **extra), status


def too_many_requests(decision: RateDecision) -> tuple[Response, int]:
    response, status = error(429, "too many requests", "slow down and retry")
    response.headers["Retry-After"] = str(max(1, round(decision.retry_after + 0.5)))
    return response, status


def unavailable(exc: BaseException, what: str) -> tuple[Response, int]:
    log.error("%s: database unreachable, answering 503: %s", what, exc)
    response, status = error(
        503, "unavailable", "the inbox is unreachable; retry later (nothing was stored)"
    )
    response.headers["Retry-After"] = "30"
    return response, status


DATABASE_DOWN = (PoolTimeout, psycopg.OperationalError)


def store(query: str, params: dict[str, object]) -> list[tuple]:
    """Run the provider's storing call and commit. Retried once on a broken pooled connection
    (after a database restart the pool holds dead ones): storing is idempotent by dedupe key."""
    pool = db.pool()
    for attempt in (1, 2):
        try:
            with pool.connection() as conn:
                # Autocommit: one round trip stores and commits (the commit comes before any
                # 2xx); the connection goes back to the pool as it came.
                conn.autocommit = True
                try:
                    return conn.execute(query, params).fetchall()
                finally:
                    if not conn.closed:
                        conn.autocommit = False
        except psycopg.OperationalError:
            if attempt == 2:
                raise
            pool.check()  # drop every dead idle connection before the retry
    raise AssertionError("unreachable")


class WorkerWaker:
    """NOTIFYs the worker on ``channel`` that events wait, from a thread of this process, at
    most once per ``interval`` however many deliveries arrive, and always after the latest one.

    Not in the storing transaction: a transaction that notifies holds a database-wide lock
    through its commit's WAL flush, so concurrent deliveries would commit one at a time. If a
    notification is lost, the worker's periodic sweep still finds the events.
    """

    def __init__(self, channel: str, interval: float = 0.01):
        self.channel = channel
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
                    target=self._run, name=f"{self.channel}-waker", daemon=True
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
                    conn.execute(queries.wake_webhook_worker, {"channel": self.channel})
            except Exception as exc:  # a thread of its own: nobody else would see it
                log.warning("%s: could not wake the worker (its sweep will): %s", self.channel, exc)
            time.sleep(self.interval)
