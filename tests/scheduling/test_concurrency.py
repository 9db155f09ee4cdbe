"""Scheduling under real concurrency: parallel connections started together by a barrier."""

from __future__ import annotations

from collections import Counter

import psycopg
import pytest

from tests.helpers import TestDatabase, as_anon, as_user, create_user, run_together
from tests.scheduling.factories import (
    assert_counters_true,
    create_practitioner,
    create_service,
    create_slot,
    request,
    slot_row,
)


def outcome(result: object) -> str:
    if isinstance(result, psycopg.Error):
        return result.sqlstate or "?"
    if isinstance(result, BaseException):
        raise result
    return "ok"


@pytest.mark.parametrize("approval_required", [True, False], ids=["holds", "auto-confirm"])
def test_fifty_connections_requesting_a_capacity_three_slot_yield_exactly_three_places(
    database: TestDatabase, conn: psycopg.Connection, approval_required: bool
) -> None:
    doctor = create_practitioner(conn, approval_required=approval_required)
    slot = create_slot(conn, doctor, create_service(conn, doctor), capacity=3)
    connections = [database.connect() for _ in range(50)]
    # Anonymous requests always wait for the practitioner; signed-in patients are confirmed at
    # once by a practitioner who does not require approval.
    patients = [create_user(conn, "patient") for _ in range(50)] if not approval_required else []

    def book(index: int, connection: psycopg.Connection) -> dict[str, object]:
        caller = as_user(connection, patients[index]) if patients else as_anon(connection)
        with caller:
            return request(connection, slot, phone=f"+3460010{index:04d}")

    results = run_together(len(connections), lambda i: book(i, connections[i]))
    assert Counter(outcome(r) for r in results) == {"ok": 3, "CH002": 47}
    state = slot_row(conn, slot)
    assert state["current_reservations"] == 3
    assert state["pending_requests"] == (3 if approval_required else 0)
    assert state["status"] == ("pending_approval" if approval_required else "reserved")
    counts = conn.execute(
        "select (select count(*) from public.reservation_request where slot_id = %(s)s),"
        " (select count(*) from public.reservation where slot_id = %(s)s)",
        {"s": slot},
    ).fetchone()
    assert counts == (3, 0 if approval_required else 3)
    assert_counters_true(conn, slot)


def test_concurrent_approvals_and_cancellations_keep_counters_exact(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    doctor = create_practitioner(conn)
    slot = create_slot(conn, doctor, create_service(conn, doctor), capacity=5)
    request_ids = []
    for n in range(5):
        with as_anon(conn):
            request_ids.append(request(conn, slot, phone=f"+3460020{n:04d}")["request_id"])
    connections = [database.connect() for _ in range(10)]

    def decide(index: int, connection: psycopg.Connection) -> object:
        # Two connections race on each request: one approves, one rejects.
        with as_user(connection, doctor):
            verb = "approve" if index % 2 == 0 else "reject"
            args = "%s" if verb == "approve" else "%s, 'race'"
            return connection.execute(
                f"select public.{verb}_reservation_request({args})",
                [request_ids[index // 2]],
            ).fetchone()

    results = run_together(len(connections), lambda i: decide(i, connections[i]))
    assert Counter(outcome(r) for r in results) == {"ok": 5, "CH006": 5}
    statuses = Counter(
        status
        for (status,) in conn.execute(
            "select status from public.reservation_request where slot_id = %s", [slot]
        )
    )
    approved = statuses["approved"]
    assert approved + statuses["rejected"] == 5
    assert conn.execute(
        "select count(*) from public.reservation where slot_id = %s", [slot]
    ).fetchone() == (approved,)
    assert_counters_true(conn, slot)


@pytest.mark.parametrize("first", ["approve", "expire"])
def test_hold_run_out_is_expired_whichever_of_approve_and_sweep_comes_first(
    database: TestDatabase, conn: psycopg.Connection, first: str
) -> None:
    doctor = create_practitioner(conn)
    slot = create_slot(conn, doctor, create_service(conn, doctor))
    with as_anon(conn):
        request_id = request(conn, slot)["request_id"]
    approver, sweeper = database.connect(autocommit=False), database.connect(autocommit=False)
    # The approver's transaction began before the hold ran out; the sweeper's after.
    approver.execute("select now()")
    conn.execute(
        "update public.reservation_request set expires_at = clock_timestamp()"
        " + interval '50 milliseconds' where id = %s",
        [request_id],
    )
    conn.execute("select pg_sleep(0.1)")
    sweeper.execute("select now()")
    if first == "expire":
        assert sweeper.execute("select public.expire_reservation_requests()").fetchone() == (1,)
        sweeper.commit()
        with pytest.raises(psycopg.Error) as raised:
            approver.execute("select public.approve_reservation_request(%s)", [request_id])
        assert raised.value.sqlstate == "CH006"
        approver.rollback()
        final = "expired"
    else:
        # The hold has run out by now; the approval judges the hold when it locks the row.
        with pytest.raises(psycopg.Error) as raised:
            approver.execute("select public.approve_reservation_request(%s)", [request_id])
        assert raised.value.sqlstate == "CH006"
        approver.rollback()
        assert sweeper.execute("select public.expire_reservation_requests()").fetchone() == (1,)
        sweeper.commit()
        final = "expired"
    assert conn.execute(
        "select status from public.reservation_request where id = %s", [request_id]
    ).fetchone() == (final,)
    assert conn.execute("select count(*) from public.reservation").fetchone() == (0,)
    assert_counters_true(conn, slot)


def test_sweep_skips_a_request_being_approved_and_the_approval_wins(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    doctor = create_practitioner(conn)
    slot = create_slot(conn, doctor, create_service(conn, doctor))
    with as_anon(conn):
        request_id = request(conn, slot)["request_id"]
    approver = database.connect(autocommit=False)
    conn.execute(
        "update public.reservation_request set expires_at = clock_timestamp()"
        " + interval '1 second' where id = %s",
        [request_id],
    )
    approver.execute("select public.approve_reservation_request(%s)", [request_id])
    # The hold runs out while the approval is still uncommitted: the sweep must not wait for
    # it, nor expire what is being approved.
    conn.execute("select pg_sleep(1.1)")
    assert conn.execute("select public.expire_reservation_requests()").fetchone() == (0,)
    approver.commit()
    assert conn.execute("select public.expire_reservation_requests()").fetchone() == (0,)
    assert conn.execute(
        "select status from public.reservation_request where id = %s", [request_id]
    ).fetchone() == ("approved",)
    assert slot_row(conn, slot)["status"] == "reserved"
    assert_counters_true(conn, slot)


def test_approve_racing_the_expiry_sweep_ends_in_exactly_one_outcome(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    doctor = create_practitioner(conn)
    service = create_service(conn, doctor)
    outcomes: Counter[str] = Counter()
    for round_ in range(20):
        slot = create_slot(conn, doctor, service)
        with as_anon(conn):
            request_id = request(conn, slot)["request_id"]
        connections = [database.connect(), database.connect()]
        # The hold runs out 0-38 ms from now, around when the two calls meet.
        conn.execute(
            "update public.reservation_request set expires_at = clock_timestamp()"
            " + %s * interval '2 milliseconds' where id = %s",
            [round_, request_id],
        )

        def act(index: int, connection: psycopg.Connection, request_id: str = request_id) -> object:
            if index == 0:
                with as_user(connection, doctor):
                    return connection.execute(
                        "select public.approve_reservation_request(%s)", [request_id]
                    ).fetchone()
            return connection.execute("select public.expire_reservation_requests()").fetchone()

        approve_result, sweep_result = run_together(2, lambda i, pair=connections: act(i, pair[i]))
        for connection in connections:
            connection.close()
        # Whatever the sweep missed because the approval held the row, the next run settles.
        conn.execute("select public.expire_reservation_requests()")
        status = conn.execute(
            "select status from public.reservation_request where id = %s", [request_id]
        ).fetchone()
        reservations = conn.execute(
            "select count(*) from public.reservation where request_id = %s", [request_id]
        ).fetchone()
        if outcome(approve_result) == "ok":
            assert status == ("approved",)
            assert reservations == (1,)
            assert sweep_result == (0,)
            outcomes["approved"] += 1
        else:
            assert outcome(approve_result) == "CH006"
            assert status == ("expired",)
            assert reservations == (0,)
            outcomes["expired"] += 1
        assert_counters_true(conn, slot)
    assert sum(outcomes.values()) == 20
