"""Identity RLS: profiles, providers and memberships for each role."""

from __future__ import annotations

import psycopg

from tests.helpers import create_user


def test_signup_creates_profile_with_role_from_app_metadata(conn: psycopg.Connection) -> None:
    doctor = create_user(conn, "doctor", phone="34600111222", full_name="Dr Ada")
    row = conn.execute(
        "select role, phone, full_name from public.profile where id = %s", [doctor]
    ).fetchone()
    assert row == ("doctor", "+34600111222", "Dr Ada")
