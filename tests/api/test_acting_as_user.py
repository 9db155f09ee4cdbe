"""The one "act as this user" helper: which tokens are refused, and that an accepted one sees
exactly what row-level security shows the same user."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from flask import Flask

import app.api.auth as auth
from tests.api.conftest import World, make_app
from tests.api.jwt_double import (
    HS_SECRET,
    JwksDouble,
    SigningKey,
    hs256_token,
    new_key,
    signed_token,
)
from tests.helpers import TestDatabase, as_user


def get(app: Flask, token: str | None, path: str = "/api/tickets"):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return app.test_client().get(path, headers=headers)


def visible_through_rls(conn: psycopg.Connection, user_id: uuid.UUID) -> set[str]:
    with as_user(conn, user_id) as c:
        return {str(r[0]) for r in c.execute("select id from public.healthcare_tickets")}


def test_a_request_without_a_token_is_401_with_a_bearer_challenge(app: Flask) -> None:
    response = get(app, None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="carehub"'
    assert response.get_json()["error"] == "unauthorized"


def refused_tokens(user: uuid.UUID, key: SigningKey, jwks_key_kid: str) -> dict[str, str]:
    stranger_key = new_key("ES256")
    stranger_key.kid = jwks_key_kid  # the kid of a published key, signed with another key
    return {
        "forged (HS256, another secret)": hs256_token(user, "someone-else's-secret-" * 2),
        "expired": hs256_token(user, exp=1_000_000_000),
        "expired (JWKS key)": signed_token(user, key, exp=1_000_000_000),
        "wrong audience": hs256_token(user, aud="anon"),
        "no audience": hs256_token(user, aud=None),
        "wrong key (published kid)": signed_token(user, stranger_key),
        "unknown kid": signed_token(user, new_key("ES256")),
        "anon key": hs256_token(user, role="anon"),
        "service role": hs256_token(user, role="service_role"),
        "no exp": hs256_token(user, exp=None),
        "not a JWT": "not-a-jwt",
        "alg none": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.",
    }


def test_forged_expired_wrong_audience_and_wrong_key_tokens_are_refused(
    app: Flask, world: World, signing_key: SigningKey
) -> None:
    for name, token in refused_tokens(world.first.patient, signing_key, signing_key.kid).items():
        response = get(app, token)
        assert response.status_code == 401, name
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="carehub", error="invalid_token"'), name
        assert response.get_json()["error"] == "unauthorized", name


@pytest.mark.parametrize("algorithm", ["HS256", "ES256", "RS256"])
def test_a_valid_token_sees_exactly_what_rls_shows_the_same_user(
    app: Flask,
    conn: psycopg.Connection,
    world: World,
    jwks: JwksDouble,
    algorithm: str,
) -> None:
    key = next((k for k in jwks.keys if k.algorithm == algorithm), None)
    users = [
        world.first.patient,
        world.first.pharmacist,
        world.second.doctor,
        world.stranger,
        world.admin,
    ]
    for user in users:
        token = hs256_token(user) if key is None else signed_token(user, key)
        response = get(app, token)
        assert response.status_code == 200, response.get_json()
        seen = {t["id"] for t in response.get_json()["tickets"]}
        assert seen == visible_through_rls(conn, user)
    # The matrix is not trivial: people see different things.
    assert {t for u in users[:3] for t in visible_through_rls(conn, u)} == {
        str(world.first.ticket_id),
        str(world.second.ticket_id),
    }
    assert visible_through_rls(conn, world.stranger) == set()


def test_the_request_runs_as_authenticated_with_the_token_claims(app: Flask, world: World) -> None:
    @auth.as_user
    def whoami():
        from flask import g, jsonify

        row = g.conn.execute(
            "select current_user, auth.uid()::text, auth.jwt() ->> 'session_id',"
            " current_setting('request.jwt.claims', true)::jsonb ->> 'aud'"
        ).fetchone()
        return jsonify(list(row))

    app.add_url_rule("/api/test-whoami", view_func=whoami)
    token = hs256_token(world.first.patient, session_id="s-1")
    assert get(app, token, "/api/test-whoami").get_json() == [
        "authenticated",
        str(world.first.patient),
        "s-1",
        "authenticated",
    ]


def test_a_new_signing_key_is_found_by_its_kid(
    app: Flask, world: World, jwks: JwksDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "JWKS_MIN_REFETCH_SECONDS", 0.0)
    assert get(app, signed_token(world.first.patient, jwks.keys[0])).status_code == 200
    rotated = new_key("ES256")
    jwks.keys.append(rotated)
    assert get(app, signed_token(world.first.patient, rotated)).status_code == 200
    assert jwks.fetches == 2


def test_unknown_kids_do_not_make_a_fetch_each(app: Flask, world: World, jwks: JwksDouble) -> None:
    for _ in range(5):
        assert get(app, signed_token(world.first.patient, new_key())).status_code == 401
    assert jwks.fetches == 1


def test_keys_are_fetched_once_and_cached(app: Flask, world: World, jwks: JwksDouble) -> None:
    for _ in range(3):
        assert get(app, signed_token(world.first.patient, jwks.keys[1])).status_code == 200
    assert jwks.fetches == 1


def test_without_any_verification_setting_user_endpoints_answer_503(
    database: TestDatabase, world: World
) -> None:
    for app in make_app(database.url):
        response = get(app, hs256_token(world.first.patient))
        assert response.status_code == 503
        assert "SUPABASE_JWT_SECRET" in response.get_json()["message"]
        assert app.test_client().get("/healthz").get_json()["features"]["user_endpoints"]


def test_an_unreachable_jwks_is_503_not_401(database: TestDatabase, world: World) -> None:
    from app.localdb import free_port

    url = f"http://127.0.0.1:{free_port()}/auth/v1/.well-known/jwks.json"
    for app in make_app(database.url, supabase_jwt_secret=HS_SECRET, supabase_jwks_url=url):
        response = get(app, signed_token(world.first.patient, new_key()))
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "30"
        # HS256 tokens still work while the JWKS is down.
        assert get(app, hs256_token(world.first.patient)).status_code == 200


def test_jwks_url_defaults_to_the_project_auth_path() -> None:
    from app.config import Settings

    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql://u@h/db", "SUPABASE_URL": "https://abc.supabase.co/"}
    )
    assert settings.supabase_jwks_url == "https://abc.supabase.co/auth/v1/.well-known/jwks.json"


def test_a_failing_endpoint_answers_json_500_without_a_traceback(app: Flask, world: World) -> None:
    @auth.as_user
    def broken():
        raise RuntimeError("a bug")

    app.add_url_rule("/api/test-broken", view_func=broken)
    response = get(app, hs256_token(world.first.patient), "/api/test-broken")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal_error",
        "message": "the request failed; it was logged",
    }
