"""Settings from the environment. A missing required setting stops start-up naming it."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it and says what to set."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` requests per ``per_seconds`` from one client (a token bucket)."""

    count: int
    per_seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.per_seconds


_RATE_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


def _rate_limit(env: Mapping[str, str], name: str, default: str) -> RateLimit | None:
    raw = env.get(name, "").strip().lower() or default
    if raw in ("0", "off", "none"):
        return None
    count, _, period = raw.partition("/")
    if not count.strip().isdigit() or int(count) <= 0 or period.strip() not in _RATE_PERIODS:
        raise ConfigError(
            f"{name} must look like 600/minute (a count per second, minute or hour) or off, "
            f"got {raw!r}"
        )
    return RateLimit(int(count), _RATE_PERIODS[period.strip()])


def _secrets(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    # Several secrets, comma-separated, so a secret can be rotated without refusing events
    # signed with the old one while Lifefile switches over.
    return tuple(s.strip() for s in env.get(name, "").split(",") if s.strip())


def _basic_auth(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    user, sep, password = raw.partition(":")
    if not sep or not user or not password:
        raise ConfigError(f"{name} must be user:password (both non-empty)")
    return user, password


def _networks(
    env: Mapping[str, str], name: str
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in (s.strip() for s in env.get(name, "").split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"{name} must be comma-separated addresses or CIDR ranges "
                f"(e.g. 10.0.0.0/8,127.0.0.1), got {item!r}"
            ) from None
    return tuple(networks)


@dataclass(frozen=True)
class Settings:
    database_url: str
    pool_min_size: int = 1
    pool_max_size: int = 10
    pool_timeout: float = 5.0
    # Lifefile webhook: HMAC secrets (any one may have signed), HTTP Basic credentials, and
    # the per-client request rate. With no secret and no credentials the endpoint is off.
    lifefile_webhook_secrets: tuple[str, ...] = ()
    lifefile_basic_auth: tuple[str, str] | None = None
    lifefile_rate_limit: RateLimit | None = RateLimit(600, 60.0)
    # Requests that fail authentication have a budget of their own per client address.
    lifefile_unauthenticated_rate_limit: RateLimit | None = RateLimit(60, 60.0)
    # Proxies whose X-Forwarded-For names the client (nobody else's is believed).
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @property
    def lifefile_configured(self) -> bool:
        return bool(self.lifefile_webhook_secrets or self.lifefile_basic_auth)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        database_url = env.get("DATABASE_URL", "").strip()
        if not database_url:
            raise ConfigError(
                "DATABASE_URL is not set. Set it to the database's connection URL, e.g. the "
                "one `carehub db start` prints, or your Supabase project's (Settings → Database)."
            )
        return cls(
            database_url=database_url,
            pool_min_size=_int(env, "DB_POOL_MIN_SIZE", 1),
            pool_max_size=_int(env, "DB_POOL_MAX_SIZE", 10),
            lifefile_webhook_secrets=_secrets(env, "LIFEFILE_WEBHOOK_SECRET"),
            lifefile_basic_auth=_basic_auth(env, "LIFEFILE_BASIC_AUTH"),
            lifefile_rate_limit=_rate_limit(env, "LIFEFILE_RATE_LIMIT", "600/minute"),
            lifefile_unauthenticated_rate_limit=_rate_limit(
                env, "LIFEFILE_UNAUTHENTICATED_RATE_LIMIT", "60/minute"
            ),
            trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
        )
