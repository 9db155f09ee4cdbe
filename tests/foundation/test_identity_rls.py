"""Identity: profiles follow auth.users; RLS on profile, providers and provider_members for
each role — allowed (rows), silently filtered (zero rows) and rejected (the error)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import errors

from tests.helpers import add_member, as_anon, as_service, as_user, create_provider, create_user

RLS_VIOLATION = "new row violates row-level security policy"


@dataclass
class People:
    admin: uuid.UUID
    owner: uuid.UUID
    staff: uuid.UUID
    outsider: uuid.UUID
    patient: uuid.UUID
    other_patient: uuid.UUID
    pharmacy: uuid.UUID
    other_pharmacy: uuid.UUID
    closed_pharmacy: uuid.UUID


@pytest.fixture
def people(conn: psycopg.Connection) -> People:
    owner = create_user(conn, "pharmacist")
    staff = create_user(conn, "pharmacist")
    outsider = create_user(conn, "pharmacist")
    return People(
        admin=create_user(conn, "admin"),
        owner=owner,
        staff=staff,
        outsider=outsider,
        patient=create_user(conn, "patient"),
        other_patient=create_user(conn, "patient"),
        pharmacy=create_provider(conn, "pharmacy", owner=owner, staff=[staff]),
        other_pharmacy=create_provider(conn, "pharmacy", owner=outsider),
        closed_pharmacy=create_provider(conn, "pharmacy", is_active=False),
    )


def ids(conn: psycopg.Connection, query: str, params: list[object] | None = None) -> set:
    return {row[0] for row in conn.execute(query, params or []).fetchall()}


# -- sign-up ---------------------------------------------------------------------------------


def test_signup_creates_profile_with_role_from_app_metadata(conn: psycopg.Connection) -> None:
    doctor = create_user(conn, "doctor", phone="34600111222", full_name="Dr Ada")
    row = conn.execute(
        "select role, phone, full_name, timezone from public.profile where id = %s", [doctor]
    ).fetchone()
    assert row == ("doctor", "+34600111222", "Dr Ada", "UTC")


def test_signup_without_a_role_is_a_patient_whatever_user_metadata_claims(
    conn: psycopg.Connection,
) -> None:
    user_id = uuid.uuid4()
    conn.execute(
        "insert into auth.users (id, email, raw_app_meta_data, raw_user_meta_data)"
        " values (%s, 'sneaky@example.test', '{\"provider\": \"email\"}', %s)",
        [user_id, json.dumps({"role": "admin"})],
    )
    row = conn.execute("select role from public.profile where id = %s", [user_id]).fetchone()
    assert row == ("patient",)


def test_signup_with_an_unknown_role_is_refused_naming_it(conn: psycopg.Connection) -> None:
    with pytest.raises(errors.InvalidParameterValue, match="unknown role superuser"):
        create_user(conn, "superuser")


def test_profile_contact_details_follow_the_account(conn: psycopg.Connection) -> None:
    user = create_user(conn, "patient", email="old@example.test")
    conn.execute(
        "update auth.users set email = 'new@example.test', phone = '15550001111' where id = %s",
        [user],
    )
    row = conn.execute("select email, phone from public.profile where id = %s", [user]).fetchone()
    assert row == ("new@example.test", "+15550001111")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("phone", "555-0100"),
        ("timezone", "Mars/Olympus"),
        ("preferred_contact_method", "fax"),
    ],
)
def test_profile_rejects_malformed_values(
    conn: psycopg.Connection, column: str, value: str
) -> None:
    user = create_user(conn)
    with pytest.raises(errors.CheckViolation), as_user(conn, user):
        conn.execute(f"update public.profile set {column} = %s where id = %s", [value, user])


# -- profile -----------------------------------------------------------------------------------


def test_user_reads_only_their_own_profile(conn: psycopg.Connection, people: People) -> None:
    with as_user(conn, people.patient):
        assert ids(conn, "select id from public.profile") == {people.patient}


def test_admin_reads_every_profile(conn: psycopg.Connection, people: People) -> None:
    with as_user(conn, people.admin):
        seen = ids(conn, "select id from public.profile")
    assert {people.patient, people.other_patient, people.owner, people.admin} <= seen


def test_service_role_reads_every_profile(conn: psycopg.Connection, people: People) -> None:
    with as_service(conn):
        assert len(ids(conn, "select id from public.profile")) == 6


def test_user_updates_their_own_profile(conn: psycopg.Connection, people: People) -> None:
    with as_user(conn, people.patient):
        cur = conn.execute(
            "update public.profile set full_name = 'Pat', timezone = 'Europe/Madrid',"
            " sms_opt_in = true where id = %s",
            [people.patient],
        )
        assert cur.rowcount == 1


def test_user_cannot_update_someone_elses_profile(conn: psycopg.Connection, people: People) -> None:
    with as_user(conn, people.patient):
        cur = conn.execute(
            "update public.profile set full_name = 'Hacked' where id = %s", [people.other_patient]
        )
        assert cur.rowcount == 0
    row = conn.execute(
        "select full_name from public.profile where id = %s", [people.other_patient]
    ).fetchone()
    assert row == (None,)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("role", "admin"),
        ("id", str(uuid.uuid4())),
        ("email", "x@example.test"),
    ],
)
def test_user_cannot_change_privileged_profile_fields(
    conn: psycopg.Connection, people: People, column: str, value: str
) -> None:
    with pytest.raises(errors.InsufficientPrivilege), as_user(conn, people.patient):
        conn.execute(
            f"update public.profile set {column} = %s where id = %s", [value, people.patient]
        )


def test_user_cannot_insert_or_delete_profiles(conn: psycopg.Connection, people: People) -> None:
    with pytest.raises(errors.InsufficientPrivilege), as_user(conn, people.patient):
        conn.execute("insert into public.profile (id) values (%s)", [uuid.uuid4()])
    with pytest.raises(errors.InsufficientPrivilege), as_user(conn, people.patient):
        conn.execute("delete from public.profile where id = %s", [people.patient])


@pytest.mark.parametrize("table", ["profile", "providers", "provider_members"])
def test_anon_reads_no_identity_table(conn: psycopg.Connection, people: People, table: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege), as_anon(conn):
        conn.execute(f"select * from public.{table}")


# -- providers ---------------------------------------------------------------------------------


def test_signed_in_users_read_active_providers_only(
    conn: psycopg.Connection, people: People
) -> None:
    with as_user(conn, people.patient):
        seen = ids(conn, "select id from public.providers")
    assert {people.pharmacy, people.other_pharmacy} <= seen
    assert people.closed_pharmacy not in seen


def test_members_and_admins_read_an_inactive_provider(
    conn: psycopg.Connection, people: People
) -> None:
    add_member(conn, people.closed_pharmacy, people.staff)
    for reader in (people.staff, people.admin):
        with as_user(conn, reader):
            assert people.closed_pharmacy in ids(conn, "select id from public.providers")


def test_only_admins_create_providers(conn: psycopg.Connection, people: People) -> None:
    insert = "insert into public.providers (kind, name) values ('pharmacy', 'New') returning id"
    with (
        pytest.raises(errors.InsufficientPrivilege, match=RLS_VIOLATION),
        as_user(conn, people.owner),
    ):
        conn.execute(insert)
    with as_user(conn, people.admin):
        assert conn.execute(insert).fetchone() is not None


def test_non_admins_cannot_change_or_delete_providers(
    conn: psycopg.Connection, people: People
) -> None:
    with as_user(conn, people.owner):
        assert (
            conn.execute(
                "update public.providers set name = 'Mine now' where id = %s", [people.pharmacy]
            ).rowcount
            == 0
        )
        assert (
            conn.execute("delete from public.providers where id = %s", [people.pharmacy]).rowcount
            == 0
        )
    with as_user(conn, people.admin):
        assert (
            conn.execute(
                "update public.providers set is_active = false where id = %s", [people.pharmacy]
            ).rowcount
            == 1
        )


# -- provider_members --------------------------------------------------------------------------


def test_members_read_their_providers_membership_only(
    conn: psycopg.Connection, people: People
) -> None:
    query = "select profile_id from public.provider_members"
    with as_user(conn, people.staff):
        assert ids(conn, query) == {people.owner, people.staff}
    with as_user(conn, people.outsider):
        assert ids(conn, query) == {people.outsider}
    with as_user(conn, people.patient):
        assert ids(conn, query) == set()


def test_owner_cannot_enrol_another_user_but_removes_staff(
    conn: psycopg.Connection, people: People
) -> None:
    # Membership is by consent: the owner invites (tests/identity), never inserts.
    newcomer = create_user(conn, "pharmacist")
    with (
        pytest.raises(errors.InsufficientPrivilege, match=RLS_VIOLATION),
        as_user(conn, people.owner),
    ):
        conn.execute(
            "insert into public.provider_members (provider_id, profile_id) values (%s, %s)",
            [people.pharmacy, newcomer],
        )
    add_member(conn, people.pharmacy, newcomer)
    with as_user(conn, people.owner):
        assert (
            conn.execute(
                "delete from public.provider_members where profile_id = %s", [newcomer]
            ).rowcount
            == 1
        )


def test_admin_adds_a_member_directly(conn: psycopg.Connection, people: People) -> None:
    newcomer = create_user(conn, "pharmacist")
    with as_user(conn, people.admin):
        conn.execute(
            "insert into public.provider_members (provider_id, profile_id) values (%s, %s)",
            [people.pharmacy, newcomer],
        )
    assert conn.execute(
        "select event, actor_id, actor_kind from public.provider_membership_events"
        " where profile_id = %s",
        [newcomer],
    ).fetchall() == [("added", people.admin, "user")]


def test_owner_cannot_add_another_owner(conn: psycopg.Connection, people: People) -> None:
    newcomer = create_user(conn, "pharmacist")
    with (
        pytest.raises(errors.InsufficientPrivilege, match=RLS_VIOLATION),
        as_user(conn, people.owner),
    ):
        conn.execute(
            "insert into public.provider_members (provider_id, profile_id, member_role)"
            " values (%s, %s, 'owner')",
            [people.pharmacy, newcomer],
        )


@pytest.mark.parametrize("actor", ["staff", "outsider", "patient"])
def test_non_owners_cannot_add_staff(conn: psycopg.Connection, people: People, actor: str) -> None:
    newcomer = create_user(conn, "pharmacist")
    with (
        pytest.raises(errors.InsufficientPrivilege, match=RLS_VIOLATION),
        as_user(conn, getattr(people, actor)),
    ):
        conn.execute(
            "insert into public.provider_members (provider_id, profile_id) values (%s, %s)",
            [people.pharmacy, newcomer],
        )


@pytest.mark.parametrize(
    ("actor", "target"),
    [
        ("staff", "staff"),
        ("outsider", "staff"),
        ("owner", "owner"),
    ],
)
def test_removals_beyond_an_owners_staff_are_filtered(
    conn: psycopg.Connection, people: People, actor: str, target: str
) -> None:
    with as_user(conn, getattr(people, actor)):
        assert (
            conn.execute(
                "delete from public.provider_members where provider_id = %s and profile_id = %s",
                [people.pharmacy, getattr(people, target)],
            ).rowcount
            == 0
        )
    assert conn.execute(
        "select count(*) from public.provider_members where provider_id = %s", [people.pharmacy]
    ).fetchone() == (2,)


def test_admin_promotes_a_member(conn: psycopg.Connection, people: People) -> None:
    query = (
        "update public.provider_members set member_role = 'owner'"
        " where provider_id = %s and profile_id = %s"
    )
    with as_user(conn, people.owner):
        assert conn.execute(query, [people.pharmacy, people.staff]).rowcount == 0
    with as_user(conn, people.admin):
        assert conn.execute(query, [people.pharmacy, people.staff]).rowcount == 1
