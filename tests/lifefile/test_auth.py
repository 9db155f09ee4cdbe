"""Lifefile authentication and request parsing, without a database: signature vectors,
timestamps, Basic auth, the event splitter and the settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from app.config import ConfigError, RateLimit, Settings
from app.webhooks.lifefile import split_events
from app.webhooks.lifefile_auth import authenticate, parse_timestamp, sign, verify_signature

BODY = b'{"prescription":{"orderId":"123"},"status":{"current":"order_shipped"}}'
NOW = 1_800_000_000.0


def test_signature_is_hex_hmac_sha256_of_the_raw_body() -> None:
    # An independent computation, so the vector does not rest on sign() itself.
    expected = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert sign("s3cret", BODY) == expected
    assert verify_signature(["s3cret"], BODY, expected).ok


def test_signature_with_sha256_prefix_and_upper_case_hex_is_accepted() -> None:
    signature = sign("s3cret", BODY)
    assert verify_signature(["s3cret"], BODY, "sha256=" + signature).ok
    assert verify_signature(["s3cret"], BODY, "SHA256=" + signature.upper()).ok


def test_signature_by_wrong_secret_is_refused() -> None:
    result = verify_signature(["s3cret"], BODY, sign("other", BODY))
    assert not result.ok
    assert "does not match" in result.reason


def test_tampered_body_is_refused() -> None:
    signature = sign("s3cret", BODY)
    tampered = BODY.replace(b"order_shipped", b"order_delivered")
    assert not verify_signature(["s3cret"], tampered, signature).ok


def test_any_of_the_rotated_secrets_verifies() -> None:
    secrets = ["new-secret", "old-secret"]
    assert verify_signature(secrets, BODY, sign("old-secret", BODY)).ok
    assert verify_signature(secrets, BODY, sign("new-secret", BODY)).ok
    assert not verify_signature(secrets, BODY, sign("retired-secret", BODY)).ok


def test_timestamped_signature_covers_timestamp_dot_body() -> None:
    timestamp = str(int(NOW))
    expected = hmac.new(b"s3cret", timestamp.encode() + b"." + BODY, hashlib.sha256).hexdigest()
    assert sign("s3cret", BODY, timestamp) == expected
    assert verify_signature(["s3cret"], BODY, expected, timestamp, now=NOW).ok
    # A signature of the body alone does not do when a timestamp is sent.
    assert not verify_signature(["s3cret"], BODY, sign("s3cret", BODY), timestamp, now=NOW).ok


def test_timestamp_cannot_be_swapped_for_a_fresh_one() -> None:
    old = str(int(NOW) - 10)
    signature = sign("s3cret", BODY, old)
    assert not verify_signature(["s3cret"], BODY, signature, str(int(NOW)), now=NOW).ok


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(0, True), (-299, True), (299, True), (-301, False), (301, False), (-86400, False)],
)
def test_timestamp_more_than_300_seconds_away_is_refused(offset: int, accepted: bool) -> None:
    timestamp = str(int(NOW) + offset)
    result = verify_signature(["s3cret"], BODY, sign("s3cret", BODY, timestamp), timestamp, now=NOW)
    assert result.ok is accepted
    if not accepted:
        assert ("future" if offset > 0 else "old") in result.reason


def test_timestamp_formats() -> None:
    assert parse_timestamp("1800000000") == 1_800_000_000.0
    assert parse_timestamp("1800000000000") == 1_800_000_000.0  # milliseconds
    assert parse_timestamp("2027-01-15T08:00:00Z") == 1_800_000_000.0
    assert parse_timestamp("2027-01-15T09:00:00+01:00") == 1_800_000_000.0
    assert parse_timestamp("2027-01-15T08:00:00") is None  # no zone: ambiguous
    assert parse_timestamp("yesterday") is None


def test_unparseable_timestamp_is_refused() -> None:
    result = verify_signature(["s3cret"], BODY, sign("s3cret", BODY, "soon"), "soon", now=NOW)
    assert not result.ok
    assert "x-lifefile-timestamp" in result.reason


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _auth(**kwargs: object):
    defaults: dict[str, object] = {
        "secrets": (),
        "basic": None,
        "body": BODY,
        "signature": None,
        "timestamp": None,
        "authorization": None,
        "now": NOW,
    }
    return authenticate(**{**defaults, **kwargs})  # type: ignore[arg-type]


def test_basic_auth_right_credentials_are_accepted() -> None:
    result = _auth(basic=("lifefile", "pa:ss"), authorization=_basic("lifefile", "pa:ss"))
    assert result.ok
    assert result.method == "basic"


@pytest.mark.parametrize(
    "authorization",
    [
        _basic("lifefile", "wrong"),
        _basic("someone", "pa:ss"),
        "Basic not-base64!",
        "Bearer abc",
        "Basic " + base64.b64encode(b"no-colon").decode(),
    ],
)
def test_basic_auth_wrong_credentials_are_refused(authorization: str) -> None:
    assert not _auth(basic=("lifefile", "pa:ss"), authorization=authorization).ok


def test_missing_signature_header_is_refused() -> None:
    result = _auth(secrets=("s3cret",))
    assert not result.ok
    assert "no credentials" in result.reason


def test_either_configured_method_suffices_but_a_bad_one_presented_refuses() -> None:
    both = {"secrets": ("s3cret",), "basic": ("lifefile", "pw")}
    assert _auth(**both, signature=sign("s3cret", BODY)).ok
    assert _auth(**both, authorization=_basic("lifefile", "pw")).ok
    assert not _auth(
        **both, signature=sign("wrong", BODY), authorization=_basic("lifefile", "pw")
    ).ok


def test_credentials_of_an_unconfigured_method_do_not_count() -> None:
    # Basic credentials mean nothing when only HMAC is configured.
    assert not _auth(secrets=("s3cret",), authorization=_basic("lifefile", "pw")).ok


def test_split_events_keeps_each_elements_exact_text() -> None:
    first = '{"orderId": 1,  "rxStatus":"Fulfillment"}'
    second = '{"orderId":2,"rxStatus":"x","y":[1, {"z":"]"}]}'
    body = f" [ {first} ,\n{second}]  "
    events, problem = split_events(body)
    assert problem is None
    assert events == [first, second]
    assert [json.loads(e) for e in events] == json.loads(body)


def test_split_events_one_object_is_the_body_itself() -> None:
    assert split_events('{"a": 1}') == (None, None)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"a": ', "not valid JSON"),
        ("", "not valid JSON"),
        ('{"a": NaN}', "not valid JSON"),
        ('"shipped"', "not an object or an array"),
        ("42", "not an object or an array"),
    ],
)
def test_split_events_explains_bodies_it_cannot_use(body: str, reason: str) -> None:
    events, problem = split_events(body)
    assert events is None
    assert problem is not None
    assert reason in problem


def test_settings_read_lifefile_configuration() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://x/y",
            "LIFEFILE_WEBHOOK_SECRET": " new , old ,",
            "LIFEFILE_BASIC_AUTH": "lifefile:pa:ss",
            "LIFEFILE_RATE_LIMIT": "50/second",
        }
    )
    assert settings.lifefile_webhook_secrets == ("new", "old")
    assert settings.lifefile_basic_auth == ("lifefile", "pa:ss")
    assert settings.lifefile_rate_limit == RateLimit(50, 1.0)
    assert settings.lifefile_configured


def test_settings_without_lifefile_configuration_leave_it_off() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://x/y"})
    assert not settings.lifefile_configured
    assert settings.lifefile_rate_limit == RateLimit(600, 60.0)
    assert (
        Settings.from_env(
            {"DATABASE_URL": "postgresql://x/y", "LIFEFILE_RATE_LIMIT": "off"}
        ).lifefile_rate_limit
        is None
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LIFEFILE_BASIC_AUTH", "no-colon"),
        ("LIFEFILE_BASIC_AUTH", ":password"),
        ("LIFEFILE_RATE_LIMIT", "fast"),
        ("LIFEFILE_RATE_LIMIT", "10/fortnight"),
    ],
)
def test_malformed_lifefile_settings_are_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({"DATABASE_URL": "postgresql://x/y", name: value})
