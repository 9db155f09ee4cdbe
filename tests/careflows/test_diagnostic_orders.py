"""Diagnostic orders with their tests: the ordering practice writes diagnostic_order_items while
the order is a draft, they are frozen once it is sent, the parties read them; an order is
scheduled with its time (optionally the centre's reservation); results are ready only with a
result file."""

from __future__ import annotations

import uuid

import psycopg

from tests.careflows.helpers import register, upload
from tests.helpers import as_user
from tests.tickets.factories import (
    make_reservation,
    make_world,
    raises_sqlstate,
    set_status,
    ticket_at,
    ticket_status,
)

ADD = (
    "insert into public.diagnostic_order_items (ticket_id, test_code, test_name, specimen,"
    " instructions, price) values (%s, %s, %s, 'blood', 'fasting', 12.50) returning id"
)


def add_test(conn: psycopg.Connection, user: uuid.UUID, order: uuid.UUID, code: str) -> uuid.UUID:
    with as_user(conn, user) as c:
        row = c.execute(ADD, [order, code, f"Test {code}"]).fetchone()
    assert row is not None
    return row[0]


def test_the_ordering_practice_writes_the_tests_of_a_draft_order(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic")
    item = add_test(conn, world.doctor.owner, order, "FBC")
    add_test(conn, world.doctor.staff, order, "CRP")
    with as_user(conn, world.doctor.staff) as c:
        assert (
            c.execute(
                "update public.diagnostic_order_items set instructions = 'no food after 22:00'"
                " where id = %s",
                [item],
            ).rowcount
            == 1
        )
        assert (
            c.execute("delete from public.diagnostic_order_items where test_code = 'CRP'").rowcount
            == 1
        )
    with as_user(conn, world.patient) as c:
        assert c.execute(
            "select test_code, instructions from public.diagnostic_order_items"
        ).fetchall() == [("FBC", "no food after 22:00")]


def test_others_cannot_write_an_orders_tests(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic")
    item = add_test(conn, world.doctor.owner, order, "FBC")
    set_status(conn, order, "sent")
    for user in (world.patient, world.diagnostics.staff, world.other_patient, world.gp.owner):
        with raises_sqlstate("42501"):
            add_test(conn, user, order, "XYZ")
        with as_user(conn, user) as c:
            assert (
                c.execute(
                    "update public.diagnostic_order_items set price = 0 where id = %s", [item]
                ).rowcount
                == 0
            )
            assert (
                c.execute(
                    "delete from public.diagnostic_order_items where id = %s", [item]
                ).rowcount
                == 0
            )
    # Only a diagnostic order lists tests.
    referral = ticket_at(conn, world, "referral")
    with raises_sqlstate("23514"):
        add_test(conn, world.doctor.owner, referral, "FBC")
    # No chosen ids.
    with as_user(conn, world.doctor.owner) as c, raises_sqlstate("42501"):
        c.execute(
            "insert into public.diagnostic_order_items (id, ticket_id, test_code, test_name)"
            " values (gen_random_uuid(), %s, 'A', 'A')",
            [order],
        )


def test_the_tests_are_frozen_once_the_order_is_sent(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic")
    item = add_test(conn, world.doctor.owner, order, "FBC")
    with as_user(conn, world.doctor.owner) as c:
        c.execute("update public.healthcare_tickets set status = 'sent' where id = %s", [order])
    with raises_sqlstate("CH007", "frozen once it was sent"):
        add_test(conn, world.doctor.owner, order, "CRP")
    with as_user(conn, world.doctor.owner) as c, raises_sqlstate("CH007"):
        c.execute("update public.diagnostic_order_items set price = 1 where id = %s", [item])
    with as_user(conn, world.doctor.owner) as c, raises_sqlstate("CH007"):
        c.execute("delete from public.diagnostic_order_items where id = %s", [item])
    with raises_sqlstate("CH007"):  # the system too
        conn.execute("update public.diagnostic_order_items set price = 1 where id = %s", [item])
    # The centre now reads what was ordered.
    with as_user(conn, world.diagnostics.staff) as c:
        assert c.execute("select test_code from public.diagnostic_order_items").fetchall() == [
            ("FBC",)
        ]


def test_the_centre_of_a_draft_order_does_not_see_its_tests(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic")
    add_test(conn, world.doctor.owner, order, "FBC")
    with as_user(conn, world.diagnostics.staff) as c:
        assert c.execute("select count(*) from public.diagnostic_order_items").fetchone() == (0,)


def test_an_order_is_scheduled_only_with_its_time(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic", "sent")
    with as_user(conn, world.diagnostics.staff) as c, raises_sqlstate("23514"):
        c.execute(
            "update public.healthcare_tickets set status = 'scheduled' where id = %s", [order]
        )
    with as_user(conn, world.diagnostics.staff) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'scheduled',"
            " scheduled_time = now() + interval '2 days' where id = %s",
            [order],
        )
    assert ticket_status(conn, order) == "scheduled"


def test_the_centre_schedules_an_order_with_its_own_reservation(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic", "sent")
    mine = make_reservation(conn, world.diagnostics.staff, world.patient)
    someone_elses = make_reservation(conn, world.diagnostics.staff, world.other_patient)
    gp_visit = make_reservation(conn, world.gp.owner, world.patient)
    for reservation in (someone_elses, gp_visit):
        with as_user(conn, world.diagnostics.owner) as c, raises_sqlstate("CH008"):
            c.execute("select public.schedule_diagnostic_order(%s, null, %s)", [order, reservation])
    for user in (world.doctor.owner, world.patient, world.other_pharmacy.owner):
        with as_user(conn, user) as c, raises_sqlstate("CH008"):
            c.execute("select public.schedule_diagnostic_order(%s, now(), null)", [order])
    with as_user(conn, world.diagnostics.owner) as c:
        row = c.execute(
            "select status, appointment_id from public.schedule_diagnostic_order(%s, null, %s)",
            [order, mine],
        ).fetchone()
    assert row == ("scheduled", mine)
    assert conn.execute(
        "select t.scheduled_time = s.start_time from public.healthcare_tickets t,"
        " public.reservation r join public.time_slot s on s.id = r.slot_id"
        " where t.id = %s and r.id = %s",
        [order, mine],
    ).fetchone() == (True,)
    with as_user(conn, world.diagnostics.owner) as c, raises_sqlstate("CH001"):
        c.execute("select public.schedule_diagnostic_order(%s, now(), null)", [order])
    actor = conn.execute(
        "select actor_kind from public.ticket_timeline where ticket_id = %s"
        " and to_status = 'scheduled'",
        [order],
    ).fetchone()
    assert actor == ("secondary",)


def test_results_are_ready_only_with_a_result_file(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    order = ticket_at(conn, world, "diagnostic", "sent")
    with as_user(conn, world.diagnostics.staff) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'scheduled',"
            " scheduled_time = now() + interval '1 day' where id = %s",
            [order],
        )
        c.execute(
            "update public.healthcare_tickets set status = 'in_progress' where id = %s", [order]
        )
    with as_user(conn, world.diagnostics.staff) as c, raises_sqlstate("23514", "result file"):
        c.execute(
            "update public.healthcare_tickets set status = 'results_ready' where id = %s", [order]
        )
    with raises_sqlstate("23514"):  # nor the system
        set_status(conn, order, "results_ready")
    # An image in documents/ is not a result.
    upload(conn, world.diagnostics.staff, f"{order}/documents/note.pdf")
    register(conn, world.diagnostics.staff, f"{order}/documents/note.pdf")
    with as_user(conn, world.diagnostics.staff) as c, raises_sqlstate("23514"):
        c.execute(
            "update public.healthcare_tickets set status = 'results_ready' where id = %s", [order]
        )
    upload(conn, world.diagnostics.staff, f"{order}/results/cbc.pdf")
    register(conn, world.diagnostics.staff, f"{order}/results/cbc.pdf")
    with as_user(conn, world.diagnostics.staff) as c:
        c.execute(
            "update public.healthcare_tickets set status = 'results_ready' where id = %s", [order]
        )
    assert ticket_status(conn, order) == "results_ready"
