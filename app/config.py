"""Settings from the environment. A missing required setting stops start-up naming it."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it and says what to set."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    """A whole-number setting from the environment; a ConfigError names it when malformed."""
    return _int(os.environ, name, default, minimum)


def port_setting(
    name: str, default: int | None, env: Mapping[str, str] | None = None
) -> int | None:
    """A TCP port from the environment (1-65535), or ``default`` when it is unset."""
    env = os.environ if env is None else env
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name} must be a TCP port number (1-65535), got {raw!r}")
    return int(raw)


DATABASE_URL_FORM = (
    "postgresql://USER:PASSWORD@HOST:PORT/DBNAME, e.g. "
    "postgresql://postgres:postgres@127.0.0.1:54330/postgres"
)


def _masked(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def check_database_url(url: str, name: str = "DATABASE_URL") -> str:
    """``url`` when libpq can parse it; otherwise a ConfigError showing the expected form."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    problem = None
    if "://" in url and not url.startswith(("postgresql://", "postgres://")):
        problem = "its scheme must be postgresql://"
    else:
        try:
            params = conninfo_to_dict(url)
        except ProgrammingError:
            problem = "it is not a connection URL"
        else:
            port = str(params.get("port") or "")
            if port and not all(part.strip().isdigit() for part in port.split(",")):
                problem = f"its port {port!r} is not a number"
    if problem:
        raise ConfigError(
            f"{name} is malformed ({problem}): expected {DATABASE_URL_FORM}; got "
            f"{_masked(url)!r}. Percent-encode special characters in the password "
            "(@ is %40, / is %2F)."
        )
    return url


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
    # Patient messaging (Twilio). Without the account sid and token, SMS and WhatsApp are off
    # and deliveries stay queued until they are set.
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_phone_number: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_whatsapp_from: str = ""
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_max_sends_per_second: float = 10.0
    public_base_url: str = ""
    support_phone: str = ""
    app_base_url: str = ""
    # User endpoints (app/api): Supabase access tokens are verified with the legacy HS256
    # secret and/or the project's JWKS (asymmetric keys). With neither they answer 503.
    supabase_jwt_secret: str | None = None
    supabase_jwks_url: str | None = None

    @property
    def lifefile_configured(self) -> bool:
        return bool(self.lifefile_webhook_secrets or self.lifefile_basic_auth)

    @property
    def sms_configured(self) -> bool:
        return bool(
            self.twilio_account_sid
            and self.twilio_auth_token
            and (self.twilio_phone_number or self.twilio_messaging_service_sid)
        )

    @property
    def whatsapp_configured(self) -> bool:
        return bool(
            self.twilio_account_sid and self.twilio_auth_token and self.twilio_whatsapp_from
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        database_url = env.get("DATABASE_URL", "").strip()
        if not database_url:
            raise ConfigError(
                "DATABASE_URL is not set. Set it to the database's connection URL, e.g. the "
                "one `carehub db start` prints, or your Supabase project's (Settings → Database)."
            )
        check_database_url(database_url)
        pool_min_size = _int(env, "DB_POOL_MIN_SIZE", 1, minimum=0)
        pool_max_size = _int(env, "DB_POOL_MAX_SIZE", 10, minimum=1)
        if pool_min_size > pool_max_size:
            raise ConfigError(
                f"DB_POOL_MIN_SIZE ({pool_min_size}) is above DB_POOL_MAX_SIZE "
                f"({pool_max_size}); raise DB_POOL_MAX_SIZE or lower DB_POOL_MIN_SIZE"
            )
        return cls(
            database_url=database_url,
            pool_min_size=pool_min_size,
            pool_max_size=pool_max_size,
            lifefile_webhook_secrets=_secrets(env, "LIFEFILE_WEBHOOK_SECRET"),
            lifefile_basic_auth=_basic_auth(env, "LIFEFILE_BASIC_AUTH"),
            lifefile_rate_limit=_rate_limit(env, "LIFEFILE_RATE_LIMIT", "600/minute"),
            lifefile_unauthenticated_rate_limit=_rate_limit(
                env, "LIFEFILE_UNAUTHENTICATED_RATE_LIMIT", "60/minute"
            ),
            trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
            **_twilio_settings(env),
            supabase_jwt_secret=env.get("SUPABASE_JWT_SECRET", "").strip() or None,
            supabase_jwks_url=_jwks_url(env),
        )


def _twilio_settings(env: Mapping[str, str]) -> dict[str, object]:
    raw_rate = env.get("TWILIO_MAX_SENDS_PER_SECOND", "").strip() or "10"
    try:
        rate = float(raw_rate)
    except ValueError:
        rate = -1.0
    if rate <= 0:
        raise ConfigError(
            f"TWILIO_MAX_SENDS_PER_SECOND must be a positive number of messages, got {raw_rate!r}"
        )
    return {
        "twilio_account_sid": env.get("TWILIO_ACCOUNT_SID", "").strip(),
        "twilio_auth_token": env.get("TWILIO_AUTH_TOKEN", "").strip(),
        "twilio_phone_number": env.get("TWILIO_PHONE_NUMBER", "").strip(),
        "twilio_messaging_service_sid": env.get("TWILIO_MESSAGING_SERVICE_SID", "").strip(),
        "twilio_whatsapp_from": env.get("TWILIO_WHATSAPP_FROM", "").strip(),
        "twilio_api_base_url": (
            env.get("TWILIO_API_BASE_URL", "").strip() or "https://api.twilio.com"
        ).rstrip("/"),
        "twilio_max_sends_per_second": rate,
        "public_base_url": env.get("PUBLIC_BASE_URL", "").strip().rstrip("/"),
        "support_phone": env.get("SUPPORT_PHONE", "").strip(),
        "app_base_url": env.get("APP_BASE_URL", "").strip().rstrip("/"),
    }


def _jwks_url(env: Mapping[str, str]) -> str | None:
    """SUPABASE_JWKS_URL, else SUPABASE_URL + the Auth server's JWKS path, else None."""
    explicit = env.get("SUPABASE_JWKS_URL", "").strip()
    base = env.get("SUPABASE_URL", "").strip()
    url = explicit or (base.rstrip("/") + "/auth/v1/.well-known/jwks.json" if base else "")
    if url and not url.startswith(("https://", "http://")):
        name = "SUPABASE_JWKS_URL" if explicit else "SUPABASE_URL"
        raise ConfigError(f"{name} must be an http(s) URL, got {url!r}")
    return url or None
