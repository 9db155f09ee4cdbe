"""Membership is by consent (access issue, rule 5): owners invite staff, admins invite owners,
the invitee accepts or declines, every change is logged; the practitioner's default practice."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
import pytest

from tests.helpers import add_member, as_anon, as_user, create_provider, create_user

RLS_VIOLATION = "new row violates row-level security policy"


@dataclass
class Practice:
    admin: uuid.UUID
    owner: uuid.UUID
    staff: uuid.UUID
    invitee: uuid.UUID
    stranger: uuid.UUID
    provider: uuid.UUID
    other_provider: uuid.UUID


@pytest.fixture
def practice(conn: psycopg.Connection) -> Practice:
    owner = create_user(conn, "doctor")
    staff = create_user(conn, "doctor")
    stranger = create_user(conn, "doctor")
    return Practice(
        admin=create_user(conn, "admin"),
        owner=owner,
        staff=staff,
        invitee=create_user(conn, "doctor"),
        stranger=stranger,
        provider=create_provider(conn, "clinic", owner=owner, staff=[staff]),
        other_provider=create_provider(conn, "doctor", owner=stranger),
    )


def sqlstate(conn: psycopg.Connection, query: str, params: list[object]) -> str | None:
    try:
        with conn.transaction():
            conn.execute(query, params)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def invite(
    conn: psycopg.Connection,
    actor: uuid.UUID,
    provider: uuid.UUID,
    invitee: uuid.UUID,
    role: str = "staff",
) -> uuid.UUID:
    with as_user(conn, actor):
        row = conn.execute(
            "select id from public.invite_provider_member(%s, %s, %s)", [provider, invitee, role]
        ).fetchone()
    assert row is not None
    return row[0]


def members(conn: psycopg.Connection, provider: uuid.UUID) -> dict[uuid.UUID, str]:
    return dict(
        conn.execute(
            "select profile_id, member_role from public.provider_members where provider_id = %s",
            [provider],
        ).fetchall()
    )


def test_owner_cannot_enrol_a_doctor_of_another_practice(
    conn: psycopg.Connection, practice: Practice
) -> None:
    # The attack of rule 5: enrol a doctor, then act as the requester of their tickets.
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege, match=RLS_VIOLATION),
        as_user(conn, practice.owner),
    ):
        conn.execute(
            "insert into public.provider_members (provider_id, profile_id) values (%s, %s)",
            [practice.provider, practice.stranger],
        )
    assert practice.stranger not in members(conn, practice.provider)


def test_invitee_becomes_a_member_only_by_accepting(
    conn: psycopg.Connection, practice: Practice
) -> None:
    invitation = invite(conn, practice.owner, practice.provider, practice.invitee)
    assert practice.invitee not in members(conn, practice.provider)
    # The invitee reads it through RLS and was notified.
    with as_user(conn, practice.invitee):
        assert conn.execute(
            "select id, status, invited_by from public.provider_invitations"
        ).fetchall() == [(invitation, "pending", practice.owner)]
        assert conn.execute(
            "select type, data ->> 'invitation_id' from public.notifications"
        ).fetchall() == [("provider_invitation", str(invitation))]
        member = conn.execute(
            "select provider_id, profile_id, member_role"
            " from public.accept_provider_invitation(%s)",
            [invitation],
        ).fetchone()
    assert member == (practice.provider, practice.invitee, "staff")
    assert conn.execute(
        "select status, decided_at is not null from public.provider_invitations where id = %s",
        [invitation],
    ).fetchone() == ("accepted", True)
    events = conn.execute(
        "select event, member_role, actor_id, actor_kind from public.provider_membership_events"
        " where profile_id = %s order by id",
        [practice.invitee],
    ).fetchall()
    assert events == [
        ("invited", "staff", practice.owner, "user"),
        ("accepted", "staff", practice.invitee, "user"),
        ("added", "staff", practice.invitee, "user"),
    ]


def test_invitee_declines_and_stays_out(conn: psycopg.Connection, practice: Practice) -> None:
    invitation = invite(conn, practice.owner, practice.provider, practice.invitee)
    with as_user(conn, practice.invitee):
        conn.execute("select public.decline_provider_invitation(%s)", [invitation])
    assert practice.invitee not in members(conn, practice.provider)
    with as_user(conn, practice.invitee):
        assert (
            sqlstate(conn, "select public.accept_provider_invitation(%s)", [invitation]) == "CH006"
        )


@pytest.mark.parametrize("actor", ["owner", "staff", "stranger"])
def test_nobody_but_the_invitee_accepts_or_declines(
    conn: psycopg.Connection, practice: Practice, actor: str
) -> None:
    invitation = invite(conn, practice.owner, practice.provider, practice.invitee)
    missing = uuid.uuid4()
    for verb in ("accept", "decline"):
        query = f"select public.{verb}_provider_invitation(%s)"
        with as_user(conn, getattr(practice, actor)):
            # Same refusal for someone else's invitation and for one that does not exist.
            assert sqlstate(conn, query, [invitation]) == "CH008"
            assert sqlstate(conn, query, [missing]) == "CH008"
    assert conn.execute(
        "select status from public.provider_invitations where id = %s", [invitation]
    ).fetchone() == ("pending",)


@pytest.mark.parametrize(
    ("actor", "role", "outcome"),
    [
        ("owner", "staff", None),
        ("owner", "owner", "CH008"),
        ("staff", "staff", "CH008"),
        ("stranger", "staff", "CH008"),
        ("admin", "owner", None),
        ("admin", "staff", None),
    ],
)
def test_owners_invite_staff_and_admins_invite_owners(
    conn: psycopg.Connection, practice: Practice, actor: str, role: str, outcome: str | None
) -> None:
    with as_user(conn, getattr(practice, actor)):
        assert (
            sqlstate(
                conn,
                "select public.invite_provider_member(%s, %s, %s)",
                [practice.provider, practice.invitee, role],
            )
            == outcome
        )


def test_anon_cannot_invite(conn: psycopg.Connection, practice: Practice) -> None:
    with as_anon(conn):
        assert (
            sqlstate(
                conn,
                "select public.invite_provider_member(%s, %s, 'staff')",
                [practice.provider, practice.invitee],
            )
            == "42501"
        )


def test_inviting_a_member_or_twice_with_another_role_is_refused(
    conn: psycopg.Connection, practice: Practice
) -> None:
    with as_user(conn, practice.owner):
        assert (
            sqlstate(
                conn,
                "select public.invite_provider_member(%s, %s, 'staff')",
                [practice.provider, practice.staff],
            )
            == "23505"
        )
    first = invite(conn, practice.owner, practice.provider, practice.invitee)
    assert invite(conn, practice.owner, practice.provider, practice.invitee) == first
    with as_user(conn, practice.admin):
        assert (
            sqlstate(
                conn,
                "select public.invite_provider_member(%s, %s, 'owner')",
                [practice.provider, practice.invitee],
            )
            == "23505"
        )


def test_owner_or_admin_revokes_a_pending_invitation(
    conn: psycopg.Connection, practice: Practice
) -> None:
    invitation = invite(conn, practice.owner, practice.provider, practice.invitee)
    for actor in (practice.staff, practice.stranger, practice.invitee):
        with as_user(conn, actor):
            assert (
                sqlstate(conn, "select public.revoke_provider_invitation(%s)", [invitation])
                == "CH008"
            )
    with as_user(conn, practice.owner):
        conn.execute("select public.revoke_provider_invitation(%s)", [invitation])
    with as_user(conn, practice.invitee):
        assert (
            sqlstate(conn, "select public.accept_provider_invitation(%s)", [invitation]) == "CH006"
        )
    owner_invitation = invite(conn, practice.admin, practice.provider, practice.invitee, "owner")
    with as_user(conn, practice.owner):
        assert (
            sqlstate(conn, "select public.revoke_provider_invitation(%s)", [owner_invitation])
            == "CH008"
        )
    with as_user(conn, practice.admin):
        conn.execute("select public.revoke_provider_invitation(%s)", [owner_invitation])


def test_invitations_are_read_by_invitee_owners_and_admins_only(
    conn: psycopg.Connection, practice: Practice
) -> None:
    invitation = invite(conn, practice.owner, practice.provider, practice.invitee)
    query = "select id from public.provider_invitations"
    for reader, expected in (
        (practice.invitee, [(invitation,)]),
        (practice.owner, [(invitation,)]),
        (practice.admin, [(invitation,)]),
        (practice.staff, []),
        (practice.stranger, []),
    ):
        with as_user(conn, reader):
            assert conn.execute(query).fetchall() == expected
    # Nobody writes invitations directly.
    with as_user(conn, practice.invitee):
        assert (
            sqlstate(
                conn,
                "update public.provider_invitations set status = 'accepted' where id = %s",
                [invitation],
            )
            == "42501"
        )
    with as_user(conn, practice.owner):
        assert (
            sqlstate(
                conn,
                "insert into public.provider_invitations (provider_id, invitee_id, member_role)"
                " values (%s, %s, 'staff')",
                [practice.provider, practice.stranger],
            )
            == "42501"
        )


def test_membership_events_record_removals_and_role_changes(
    conn: psycopg.Connection, practice: Practice
) -> None:
    with as_user(conn, practice.admin):
        conn.execute(
            "update public.provider_members set member_role = 'owner'"
            " where provider_id = %s and profile_id = %s",
            [practice.provider, practice.staff],
        )
        conn.execute(
            "delete from public.provider_members where provider_id = %s and profile_id = %s",
            [practice.provider, practice.staff],
        )
    rows = conn.execute(
        "select event, member_role, previous_role, actor_id from public.provider_membership_events"
        " where profile_id = %s order by id",
        [practice.staff],
    ).fetchall()
    assert rows == [
        ("added", "staff", None, None),
        ("role_changed", "owner", "staff", practice.admin),
        ("removed", None, "owner", practice.admin),
    ]
    with as_user(conn, practice.stranger):
        # Only the event of their own membership of their own provider.
        count = conn.execute("select count(*) from public.provider_membership_events").fetchone()
        assert count == (1,)
    with as_user(conn, practice.owner):
        assert conn.execute(
            "select count(*) from public.provider_membership_events where provider_id = %s",
            [practice.provider],
        ).fetchone() == (4,)


def test_set_default_provider_requires_membership(
    conn: psycopg.Connection, practice: Practice
) -> None:
    with as_user(conn, practice.staff):
        assert (
            sqlstate(conn, "select public.set_default_provider(%s)", [practice.other_provider])
            == "CH008"
        )
        assert conn.execute(
            "select default_provider_id from public.set_default_provider(%s)", [practice.provider]
        ).fetchone() == (practice.provider,)
        # Not through a plain update: the column is not granted.
        assert (
            sqlstate(
                conn,
                "update public.profile set default_provider_id = %s where id = %s",
                [practice.other_provider, practice.staff],
            )
            == "42501"
        )
    # Leaving the practice clears the default.
    conn.execute(
        "delete from public.provider_members where provider_id = %s and profile_id = %s",
        [practice.provider, practice.staff],
    )
    assert conn.execute(
        "select default_provider_id from public.profile where id = %s", [practice.staff]
    ).fetchone() == (None,)


def test_an_invited_owner_added_as_staff_meanwhile_becomes_owner_on_accepting(
    conn: psycopg.Connection, practice: Practice
) -> None:
    newcomer = create_user(conn, "doctor")
    invitation = invite(conn, practice.admin, practice.provider, newcomer, "owner")
    add_member(conn, practice.provider, newcomer)  # added as staff meanwhile
    with as_user(conn, newcomer):
        conn.execute("select public.accept_provider_invitation(%s)", [invitation])
    assert members(conn, practice.provider)[newcomer] == "owner"


def test_a_deleted_members_account_leaves_a_removed_event(
    conn: psycopg.Connection, practice: Practice
) -> None:
    conn.execute("delete from auth.users where id = %s", [practice.staff])
    assert practice.staff not in members(conn, practice.provider)
    assert conn.execute(
        "select event, previous_role, actor_kind from public.provider_membership_events"
        " where profile_id = %s order by id",
        [practice.staff],
    ).fetchall() == [("added", None, "system"), ("removed", "staff", "system")]
