"""Loose ends of the access issue: one rule of who the fulfiller is (the ticket row's sent_at,
rule 1) for every caller, and no client-chosen prescription ids (rule 9)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.helpers import as_user
from tests.tickets.factories import (
    World,
    make_world,
    raises_sqlstate,
    ticket_at,
    write_prescription,
)


@pytest.fixture
def world(conn: psycopg.Connection) -> World:
    return make_world(conn)


def test_caller_ticket_roles_has_only_the_form_that_reads_sent_at(
    conn: psycopg.Connection,
) -> None:
    forms = [
        args
        for (args,) in conn.execute(
            "select pg_get_function_identity_arguments(p.oid) from pg_proc as p"
            " where p.pronamespace = 'private'::regnamespace"
            " and p.proname = 'caller_ticket_roles'"
        )
    ]
    assert forms == ["p_ticket healthcare_tickets"]


def test_the_unused_prescription_party_helpers_are_gone(conn: psycopg.Connection) -> None:
    # Nothing called them, and they judged the pharmacy without sent_at.
    left = conn.execute(
        "select proname from pg_proc where pronamespace = 'private'::regnamespace"
        " and proname in ('can_read_prescription', 'is_prescription_ticket_party')"
    ).fetchall()
    assert left == []


def test_a_pharmacy_cancelling_a_sent_ticket_is_recorded_as_its_fulfiller(
    conn: psycopg.Connection, world: World
) -> None:
    ticket = ticket_at(conn, world, "prescription", "sent")
    with as_user(conn, world.pharmacy.staff):
        conn.execute(
            "update public.healthcare_tickets set status = 'cancelled' where id = %s", [ticket]
        )
    row = conn.execute(
        "select actor_kind from public.ticket_timeline"
        " where ticket_id = %s and to_status = 'cancelled'",
        [ticket],
    ).fetchone()
    assert row == ("secondary",)


def test_a_pharmacy_cannot_act_on_a_ticket_cancelled_before_it_was_sent(
    conn: psycopg.Connection, world: World
) -> None:
    ticket = ticket_at(conn, world, "prescription", "cancelled")
    with as_user(conn, world.pharmacy.staff):
        updated = conn.execute(
            "update public.healthcare_tickets set status = 'received' where id = %s", [ticket]
        ).rowcount
    assert updated == 0


@pytest.mark.parametrize("existing", [True, False])
def test_a_client_chosen_prescription_id_is_a_privilege_refusal(
    conn: psycopg.Connection, world: World, existing: bool
) -> None:
    # The attacker probes ids: an existing one must not answer 23505 (unique violation).
    victims = write_prescription(conn, world.doctor.owner, world.pharmacy.provider, world.patient)
    probe = victims if existing else uuid.uuid4()
    with raises_sqlstate("42501"), as_user(conn, world.gp.owner):
        conn.execute(
            "insert into public.prescriptions (id, doctor_id, pharmacy_id, patient_id)"
            " values (%s, %s, %s, %s)",
            [probe, world.gp.owner, world.pharmacy.provider, world.other_patient],
        )


def test_a_doctor_still_writes_a_prescription_and_gets_its_id_back(
    conn: psycopg.Connection, world: World
) -> None:
    with as_user(conn, world.gp.owner):
        row = conn.execute(
            "insert into public.prescriptions (doctor_id, pharmacy_id, patient_id)"
            " values (%s, %s, %s) returning id",
            [world.gp.owner, world.pharmacy.provider, world.other_patient],
        ).fetchone()
    assert row is not None
    assert isinstance(row[0], uuid.UUID)
