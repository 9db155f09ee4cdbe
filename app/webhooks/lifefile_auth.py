"""How a Lifefile push proves where it came from: an HMAC-SHA256 signature or HTTP Basic.

Pure functions (no Flask, no database) so the signature rules can be tested with plain vectors:

- ``x-lifefile-signature``: hex HMAC-SHA256 of the raw body, optionally prefixed ``sha256=``,
  keyed by any one of the configured secrets (several during a rotation);
- with ``x-lifefile-timestamp`` the signature covers ``<timestamp>.<body>`` and a timestamp
  more than ``TIMESTAMP_TOLERANCE_SECONDS`` from our clock is refused (replayed captures);
- ``Authorization: Basic`` with the configured user and password.

Every comparison is constant-time. Every credential a request presents must be valid, and it
must present at least one that is configured. Malformed credentials (a signature that is not 64
hex digits, a timestamp that is not ASCII digits or ISO 8601, anything non-ASCII) are refused
like wrong ones, never an error. A body-only signature is refused over a body that starts with
"<timestamp>." (a timestamped message replayed without its timestamp header), and a timestamp
is never empty, so neither kind of signature passes for the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

TIMESTAMP_TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "x-lifefile-signature"
TIMESTAMP_HEADER = "x-lifefile-timestamp"

_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_UNIX_TIME = re.compile(r"[0-9]{1,13}")
_ISO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]{5,18}(Z|[+-][0-9]{2}:?[0-9]{2})?")


@dataclass(frozen=True)
class AuthResult:
    ok: bool
    method: str = ""  # "hmac", "basic" or both joined by "+"
    reason: str = ""  # why it was refused (logged; never echoes a secret)


def sign(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """The hex signature Lifefile sends for ``body`` (and ``timestamp`` when given)."""
    message = body if timestamp is None else timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def parse_timestamp(raw: str) -> float | None:
    """Seconds since the epoch from a header: Unix seconds, Unix milliseconds or ISO 8601 (in
    ASCII: other scripts' digits and absurd lengths are not a time)."""
    value = raw.strip()
    if _UNIX_TIME.fullmatch(value):
        seconds = int(value)
        return seconds / 1000 if seconds > 10**11 else float(seconds)
    if not _ISO_TIME.fullmatch(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def _looks_timestamped(body: bytes) -> bool:
    """Whether ``body`` is a timestamped signature's message, ``<timestamp>.<body>``."""
    prefix, dot, _rest = body[:64].partition(b".")
    if not dot:
        return False
    text = prefix.decode("ascii", "replace").strip()
    return bool(_UNIX_TIME.fullmatch(text) or _ISO_TIME.fullmatch(text))


def verify_signature(
    secrets: Sequence[str],
    body: bytes,
    signature: str,
    timestamp: str | None = None,
    *,
    now: float | None = None,
    tolerance: float = TIMESTAMP_TOLERANCE_SECONDS,
) -> AuthResult:
    """Check ``signature`` (the header's value) against every secret."""
    provided = signature.strip()
    if provided[:7].lower() == "sha256=":
        provided = provided[7:]
    provided = provided.strip().lower()
    if not _HEX_SIGNATURE.fullmatch(provided):
        return AuthResult(False, reason=f"{SIGNATURE_HEADER} is not 64 hex digits")
    if timestamp is None and _looks_timestamped(body):
        return AuthResult(
            False,
            reason=f"a body-only signature over '<timestamp>.<body>' (a replayed "
            f"timestamped message without its {TIMESTAMP_HEADER})",
        )
    if timestamp is not None:
        sent_at = parse_timestamp(timestamp)
        if sent_at is None:
            return AuthResult(False, reason=f"{TIMESTAMP_HEADER} is not a Unix or ISO 8601 time")
        skew = (time.time() if now is None else now) - sent_at
        if abs(skew) > tolerance:
            when = "old" if skew > 0 else "in the future"
            reason = f"{TIMESTAMP_HEADER} is {abs(skew):.0f} s {when} (limit {tolerance:.0f} s)"
            return AuthResult(False, reason=reason)
    matched = False
    for secret in secrets:
        # No early exit: the time taken does not tell which secret matched.
        matched |= hmac.compare_digest(
            sign(secret, body, timestamp).encode(), provided.encode("ascii")
        )
    if not matched:
        return AuthResult(False, reason=f"{SIGNATURE_HEADER} does not match the body")
    return AuthResult(True, method="hmac")


def verify_basic(expected: tuple[str, str], authorization: str) -> AuthResult:
    """Check an ``Authorization: Basic ...`` header against ``(user, password)``."""
    if not authorization.isascii():
        return AuthResult(False, reason="Authorization is not ASCII")
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return AuthResult(False, reason="Authorization is not Basic")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return AuthResult(False, reason="Authorization Basic is not base64")
    user, sep, password = decoded.partition(b":")
    good_user = hmac.compare_digest(user, expected[0].encode())
    good_password = hmac.compare_digest(password, expected[1].encode())
    if not (sep and good_user and good_password):
        return AuthResult(False, reason="wrong Basic user or password")
    return AuthResult(True, method="basic")


def authenticate(
    *,
    secrets: Sequence[str],
    basic: tuple[str, str] | None,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    authorization: str | None,
    now: float | None = None,
) -> AuthResult:
    """Decide whether a request is from Lifefile, by whatever configured means it presents."""
    methods: list[str] = []
    if signature is not None and secrets:
        result = verify_signature(secrets, body, signature, timestamp, now=now)
        if not result.ok:
            return result
        methods.append(result.method)
    if authorization is not None and basic is not None:
        result = verify_basic(basic, authorization)
        if not result.ok:
            return result
        methods.append(result.method)
    if not methods:
        wanted = []
        if secrets:
            wanted.append(SIGNATURE_HEADER)
        if basic:
            wanted.append("Authorization: Basic")
        return AuthResult(False, reason=f"no credentials: expected {' or '.join(wanted)}")
    return AuthResult(True, method="+".join(methods))
