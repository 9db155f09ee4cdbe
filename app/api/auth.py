"""Acting as the signed-in user: the one helper every user endpoint goes through.

A request's Supabase access token (`Authorization: Bearer <jwt>`) is verified with PyJWT:
HS256 with SUPABASE_JWT_SECRET (legacy projects) or an asymmetric key of the project's JWKS
(SUPABASE_JWKS_URL), picked by the token's `kid`, with `exp` and `aud = authenticated`
required. Then every query of the request runs in one transaction that starts exactly as
PostgREST starts one (`set local role authenticated`, `request.jwt.claims` = the token's claims),
so row-level security decides what the service returns; the service never reads for a user as a
more privileged role.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import psycopg
from flask import Response, current_app, g, jsonify, request
from psycopg_pool import PoolTimeout

from app import db
from app.config import Settings

log = logging.getLogger(__name__)

AUDIENCE = "authenticated"
# The asymmetric algorithms Supabase signs with (ES256 by default, RS256 on request).
ASYMMETRIC_ALGORITHMS = ("ES256", "RS256", "EdDSA")
# Clock skew tolerated on exp/iat/nbf between Supabase Auth and us.
LEEWAY_SECONDS = 10
# The key set is read again after this long, and at most this often when a token names a kid
# we do not know (a rotation): a flood of forged kids must not become a flood of fetches.
JWKS_LIFESPAN_SECONDS = 600.0
JWKS_MIN_REFETCH_SECONDS = 30.0
JWKS_TIMEOUT_SECONDS = 5.0

EXTENSION_KEY = "carehub.token_verifier"


class TokenError(Exception):
    """The token is missing or not acceptable; ``str()`` says why (safe to show the caller)."""


class KeysUnavailable(Exception):
    """The JWKS could not be fetched (the service, not the caller, has a problem)."""


class JwksCache:
    """The project's signing keys by kid, fetched on first use, refreshed on an unknown kid."""

    def __init__(self, url: str):
        self.url = url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def _fetch(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=JWKS_TIMEOUT_SECONDS) as answer:  # noqa: S310
                document = json.loads(answer.read().decode("utf-8"))
            key_set = jwt.PyJWKSet.from_dict(document)
        except (OSError, ValueError, urllib.error.URLError, jwt.PyJWKSetError) as exc:
            raise KeysUnavailable(f"cannot read the JWKS at {self.url}: {exc}") from exc
        self._keys = {key.key_id: key for key in key_set.keys if key.key_id}
        self._fetched_at = time.monotonic()

    def key(self, kid: str) -> jwt.PyJWK | None:
        with self._lock:
            now = time.monotonic()
            age = None if self._fetched_at is None else now - self._fetched_at
            if (
                age is None
                or age > JWKS_LIFESPAN_SECONDS
                or (kid not in self._keys and age > JWKS_MIN_REFETCH_SECONDS)
            ):
                try:
                    self._fetch()
                except KeysUnavailable:
                    if not self._keys:
                        raise
                    # Keep serving the keys we have while the endpoint is down.
                    log.warning("JWKS refresh failed; keeping %d cached keys", len(self._keys))
                    self._fetched_at = now
            return self._keys.get(kid)


@dataclass
class TokenVerifier:
    secret: str | None
    jwks: JwksCache | None

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        jwks = JwksCache(settings.supabase_jwks_url) if settings.supabase_jwks_url else None
        return cls(settings.supabase_jwt_secret, jwks)

    @property
    def configured(self) -> bool:
        return bool(self.secret or self.jwks)

    def describe(self) -> str:
        modes = [m for m, on in (("hs256", self.secret), ("jwks", self.jwks)) if on]
        if not modes:
            return "disabled: not configured (set SUPABASE_JWT_SECRET or SUPABASE_URL)"
        return f"enabled ({', '.join(modes)})"

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or TokenError saying why it is refused."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise TokenError("the token is not a JWT") from None
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256":
            if not self.secret:
                raise TokenError("HS256 tokens are not accepted by this service")
            key = self.secret
        elif algorithm in ASYMMETRIC_ALGORITHMS and self.jwks:
            kid = header.get("kid")
            if not isinstance(kid, str) or not kid:
                raise TokenError("the token names no signing key (kid)")
            found = self.jwks.key(kid)
            if found is None:
                raise TokenError("the token is signed with an unknown key")
            key = found.key
        else:
            raise TokenError(f"tokens signed with {algorithm!r} are not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=AUDIENCE,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise TokenError("the token is not for signed-in users (aud)") from None
        except jwt.InvalidSignatureError:
            raise TokenError("the token's signature is not valid") from None
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"the token is not valid ({exc})") from None
        if claims.get("role") != "authenticated":
            raise TokenError("the token is not a signed-in user's (role)")
        return claims


def init_app(app) -> None:
    verifier = TokenVerifier.from_settings(app.config["CAREHUB_SETTINGS"])
    app.extensions[EXTENSION_KEY] = verifier
    from app.health import FEATURES_KEY

    app.extensions.setdefault(FEATURES_KEY, {})["user_endpoints"] = verifier.describe()
    if not verifier.configured:
        log.warning("user endpoints: %s", verifier.describe())


def error_response(status: int, error: str, message: str, **headers: str) -> Response:
    response = jsonify(error=error, message=message)
    response.status_code = status
    response.headers.update(headers)
    return response


def _unauthorized(message: str, *, invalid: bool) -> Response:
    # RFC 6750: a request without credentials gets the bare challenge; a bad token says so.
    challenge = 'Bearer realm="carehub"'
    if invalid:
        challenge += f', error="invalid_token", error_description="{message}"'
    return error_response(401, "unauthorized", message, **{"WWW-Authenticate": challenge})


# The database's refusals that mean "this user may not": plain privilege (also an RLS check on
# a write) and the project's not-a-party code.
FORBIDDEN_SQLSTATES = {"42501", "CH008"}


def _set_request(conn: psycopg.Connection, claims: dict[str, Any]) -> None:
    # What PostgREST runs at the start of the request's transaction.
    conn.execute("set local role authenticated")
    conn.execute(
        "select set_config('request.jwt.claims', %s, true),"
        " set_config('request.method', %s, true),"
        " set_config('request.path', %s, true)",
        [json.dumps(claims), request.method, request.path],
    )


def as_user(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a user endpoint: verify the bearer token, then call ``view`` with ``g.conn``
    set to a connection inside one transaction acting as that user (``g.claims`` holds the
    token's claims). 401 for a missing or bad token, 403 when the database refuses, 503 when
    tokens cannot be checked or the database is unreachable; every answer is JSON."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verifier: TokenVerifier = current_app.extensions[EXTENSION_KEY]
        if not verifier.configured:
            return error_response(
                503, "not_configured", "user endpoints are off: " + verifier.describe()
            )
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("send the Supabase access token as Bearer", invalid=False)
        try:
            claims = verifier.verify(token.strip())
        except TokenError as exc:
            return _unauthorized(str(exc), invalid=True)
        except KeysUnavailable as exc:
            log.error("user endpoints: %s", exc)
            return error_response(
                503,
                "keys_unavailable",
                "the signing keys cannot be read; try again later",
                **{"Retry-After": "30"},
            )
        try:
            with db.pool().connection() as conn, conn.transaction():
                _set_request(conn, claims)
                g.conn, g.claims = conn, claims
                try:
                    return view(*args, **kwargs)
                finally:
                    g.pop("conn", None)
        except psycopg.Error as exc:
            return _database_error(exc)
        except PoolTimeout:
            return error_response(
                503,
                "database_unavailable",
                "the database is unreachable; try again later",
                **{"Retry-After": "5"},
            )
        except Exception:
            # A bug must still answer JSON, and never show the caller a traceback.
            log.exception("user endpoint %s failed", request.path)
            return error_response(500, "internal_error", "the request failed; it was logged")

    return wrapper


def _database_error(exc: psycopg.Error) -> Response:
    code = exc.sqlstate or ""
    diag = exc.diag.message_primary if exc.diag else None
    if code in FORBIDDEN_SQLSTATES:
        return error_response(403, "forbidden", diag or "not allowed for this user")
    if code.startswith("CH") or code[:2] in ("22", "23"):
        return error_response(400, "invalid_request", diag or "the request was refused")
    if isinstance(exc, psycopg.OperationalError):
        return error_response(
            503,
            "database_unavailable",
            "the database is unreachable; try again later",
            **{"Retry-After": "5"},
        )
    log.exception("user endpoint: database error", exc_info=exc)
    return error_response(500, "internal_error", "the request failed; it was logged")
