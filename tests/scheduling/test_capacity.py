"""Scheduling: capacity, holds, auto-confirm, slot status and the booking RPCs' rules."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from tests.helpers import as_anon, as_service, as_user, create_user
from tests.scheduling.factories import (
    assert_counters_true,
    create_practitioner,
    create_service,
    create_slot,
    make_slot_started,
    request,
    slot_row,
    sqlstate_of,
)


@pytest.fixture
def doctor(conn: psycopg.Connection) -> uuid.UUID:
    return create_practitioner(conn)


@pytest.fixture
def service(conn: psycopg.Connection, doctor: uuid.UUID) -> uuid.UUID:
    return create_service(conn, doctor)


def anon_request(conn: psycopg.Connection, slot: uuid.UUID, **kwargs: Any) -> dict[str, Any]:
    with as_anon(conn):
        return request(conn, slot, **kwargs)


def test_capacity_one_slot_takes_one_request_and_refuses_the_next_with_ch002(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service, capacity=1)
    first = anon_request(conn, slot)
    assert first["status"] == "pending"
    assert first["reservation_id"] is None
    assert slot_row(conn, slot)["status"] == "pending_approval"
    assert sqlstate_of(lambda: anon_request(conn, slot, phone="+34600999888")) == "CH002"
    assert_counters_true(conn, slot)


def test_slot_fills_exactly_to_capacity_and_one_more_gets_ch002(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service, capacity=3)
    statuses = []
    for n in range(3):
        anon_request(conn, slot, phone=f"+3460011122{n}")
        statuses.append(slot_row(conn, slot)["status"])
    # Bookable while a place is free; full of holds it waits for the practitioner.
    assert statuses == ["available", "available", "pending_approval"]
    assert slot_row(conn, slot)["current_reservations"] == 3
    assert sqlstate_of(lambda: anon_request(conn, slot, phone="+34600111229")) == "CH002"
    assert slot_row(conn, slot)["current_reservations"] == 3
    assert_counters_true(conn, slot)


def test_approving_all_holds_makes_the_slot_reserved(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service, capacity=2)
    requests = [anon_request(conn, slot, phone=f"+3460011122{n}") for n in range(2)]
    with as_user(conn, doctor):
        conn.execute("select public.approve_reservation_request(%s)", [requests[0]["request_id"]])
    assert slot_row(conn, slot)["status"] == "pending_approval"
    with as_user(conn, doctor):
        reservation = conn.execute(
            "select status, source, price_at_booking, patient_name"
            " from public.approve_reservation_request(%s)",
            [requests[1]["request_id"]],
        ).fetchone()
    assert reservation is not None
    assert reservation[0:2] == ("confirmed", "whatsapp")
    assert str(reservation[2]) == "50.00"
    state = slot_row(conn, slot)
    assert (state["status"], state["current_reservations"], state["pending_requests"]) == (
        "reserved",
        2,
        0,
    )
    assert_counters_true(conn, slot)


def test_rejection_releases_the_hold(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service, capacity=1)
    held = anon_request(conn, slot)
    with as_user(conn, doctor):
        rejected = conn.execute(
            "select status, rejection_reason from public.reject_reservation_request(%s, %s)",
            [held["request_id"], "  Fully booked that day  "],
        ).fetchone()
    assert rejected == ("rejected", "Fully booked that day")
    state = slot_row(conn, slot)
    assert (state["status"], state["current_reservations"], state["expires_at"]) == (
        "available",
        0,
        None,
    )
    assert anon_request(conn, slot, phone="+34600999888")["status"] == "pending"
    assert_counters_true(conn, slot)


def test_expiry_sweep_releases_holds_whose_time_ran_out(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service, capacity=2)
    stale = anon_request(conn, slot, phone="+34600111221")
    fresh = anon_request(conn, slot, phone="+34600111222")
    conn.execute(
        "update public.reservation_request set expires_at = now() - interval '1 second'"
        " where id = %s",
        [stale["request_id"]],
    )
    expired = conn.execute("select public.expire_reservation_requests()").fetchone()
    assert expired == (1,)
    statuses = dict(
        conn.execute(
            "select id, status from public.reservation_request where slot_id = %s", [slot]
        ).fetchall()
    )
    assert statuses == {
        uuid.UUID(stale["request_id"]): "expired",
        uuid.UUID(fresh["request_id"]): "pending",
    }
    state = slot_row(conn, slot)
    assert (state["status"], state["current_reservations"], state["pending_requests"]) == (
        "available",
        1,
        1,
    )
    assert conn.execute("select public.expire_reservation_requests()").fetchone() == (0,)
    assert_counters_true(conn, slot)


def test_practitioner_without_approval_gets_reservation_confirmed_at_once(
    conn: psycopg.Connection,
) -> None:
    doctor = create_practitioner(conn, approval_required=False)
    slot = create_slot(conn, doctor, create_service(conn, doctor), capacity=1)
    patient = create_user(conn, "patient")
    with as_user(conn, patient):
        result = request(conn, slot, details={"email": "maria@example.test"})
    assert result["status"] == "confirmed"
    row = conn.execute(
        "select r.status, r.patient_id, r.source, q.status, q.approved_at is not null"
        " from public.reservation as r join public.reservation_request as q"
        " on q.id = r.request_id where r.id = %s",
        [result["reservation_id"]],
    ).fetchone()
    assert row == ("confirmed", patient, "web", "approved", True)
    state = slot_row(conn, slot)
    assert (state["status"], state["current_reservations"], state["pending_requests"]) == (
        "reserved",
        1,
        0,
    )
    assert sqlstate_of(lambda: anon_request(conn, slot)) == "CH002"
    assert_counters_true(conn, slot)


def test_request_hold_defaults_to_thirty_minutes_and_never_outlives_the_slot(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    later = create_slot(conn, doctor, service)
    held = anon_request(conn, later)
    minutes = conn.execute(
        "select extract(epoch from r.expires_at - r.created_at) / 60,"
        " r.requested_time = s.start_time"
        " from public.reservation_request as r join public.time_slot as s on s.id = r.slot_id"
        " where r.id = %s",
        [held["request_id"]],
    ).fetchone()
    assert minutes is not None
    assert round(minutes[0]) == 30
    assert minutes[1]
    soon = conn.execute(
        "insert into public.time_slot (profile_id, service_id, start_time, end_time)"
        " values (%s, %s, now() + interval '10 minutes', now() + interval '40 minutes')"
        " returning id",
        [doctor, service],
    ).fetchone()
    assert soon is not None
    capped = anon_request(conn, soon[0])
    assert conn.execute(
        "select r.expires_at = s.start_time and s.expires_at = s.start_time"
        " from public.reservation_request as r join public.time_slot as s on s.id = r.slot_id"
        " where r.id = %s",
        [capped["request_id"]],
    ).fetchone() == (True,)


def test_expired_hold_cannot_be_approved(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service)
    held = anon_request(conn, slot)
    conn.execute(
        "update public.reservation_request set expires_at = now() - interval '1 second'"
        " where id = %s",
        [held["request_id"]],
    )
    with as_user(conn, doctor):
        assert (
            sqlstate_of(
                lambda: conn.execute(
                    "select public.approve_reservation_request(%s)", [held["request_id"]]
                )
            )
            == "CH006"
        )
    assert conn.execute("select count(*) from public.reservation").fetchone() == (0,)
    assert_counters_true(conn, slot)


@pytest.mark.parametrize("decision", ["approve", "reject", "expire"])
def test_decided_request_cannot_be_approved_or_rejected_again(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID, decision: str
) -> None:
    slot = create_slot(conn, doctor, service)
    request_id = anon_request(conn, slot)["request_id"]
    if decision == "approve":
        conn.execute("select public.approve_reservation_request(%s)", [request_id])
    elif decision == "reject":
        conn.execute("select public.reject_reservation_request(%s, null)", [request_id])
    else:
        conn.execute(
            "update public.reservation_request set status = 'expired' where id = %s", [request_id]
        )
    before = slot_row(conn, slot)
    with as_user(conn, doctor):
        assert (
            sqlstate_of(
                lambda: conn.execute("select public.approve_reservation_request(%s)", [request_id])
            )
            == "CH006"
        )
    with as_user(conn, doctor):
        assert (
            sqlstate_of(
                lambda: conn.execute(
                    "select public.reject_reservation_request(%s, 'x')", [request_id]
                )
            )
            == "CH006"
        )
    assert slot_row(conn, slot) == before
    assert_counters_true(conn, slot)


def test_blocked_slot_cannot_be_requested_until_unblocked(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service)
    with as_user(conn, doctor):
        blocked = conn.execute("select status from public.block_time_slot(%s)", [slot]).fetchone()
    assert blocked == ("blocked",)
    assert sqlstate_of(lambda: anon_request(conn, slot)) == "CH005"
    assert (
        sqlstate_of(
            lambda: conn.execute(
                "insert into public.reservation (slot_id, patient_name, patient_phone)"
                " values (%s, 'Direct', '+34600000001')",
                [slot],
            )
        )
        == "CH005"
    )
    with as_user(conn, doctor):
        unblocked = conn.execute(
            "select status from public.unblock_time_slot(%s)", [slot]
        ).fetchone()
    assert unblocked == ("available",)
    assert anon_request(conn, slot)["status"] == "pending"
    assert_counters_true(conn, slot)


def test_blocking_a_slot_rejects_its_holds_notifies_patients_and_keeps_confirmed_reservations(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service, capacity=4)
    patient = create_user(conn, "patient")
    confirmed_patient = create_user(conn, "patient")
    anonymous = anon_request(conn, slot)["request_id"]
    with as_user(conn, patient):
        signed_in = request(conn, slot, phone="+34600111333")["request_id"]
    with as_user(conn, confirmed_patient):
        kept = request(conn, slot, phone="+34600111444")["request_id"]
    with as_user(conn, doctor):
        reservation = conn.execute(
            "select id from public.approve_reservation_request(%s)", [kept]
        ).fetchone()
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    with as_user(conn, doctor):
        blocked = conn.execute(
            "select status, current_reservations from public.block_time_slot(%s)", [slot]
        ).fetchone()
    assert blocked == ("blocked", 1)
    assert any("1 confirmed reservation(s) stay booked" in n for n in notices)
    statuses = dict(
        conn.execute(
            "select id::text, status from public.reservation_request where id = any(%s::uuid[])",
            [[anonymous, signed_in]],
        ).fetchall()
    )
    assert statuses == {anonymous: "rejected", signed_in: "rejected"}
    assert reservation is not None
    assert conn.execute(
        "select status from public.reservation where id = %s", [reservation[0]]
    ).fetchone() == ("confirmed",)
    with as_user(conn, patient):
        notified = conn.execute(
            "select type, data ->> 'request_id' from public.notifications"
        ).fetchall()
    assert notified == [("reservation_request_rejected", str(signed_in))]
    assert_counters_true(conn, slot)
    # Blocking again changes nothing; unblocking offers the free places again.
    with as_user(conn, doctor):
        assert conn.execute("select status from public.block_time_slot(%s)", [slot]).fetchone() == (
            "blocked",
        )
        assert conn.execute(
            "select status, current_reservations from public.unblock_time_slot(%s)", [slot]
        ).fetchone() == ("available", 1)
    assert_counters_true(conn, slot)


def test_a_slot_with_pending_holds_cannot_be_blocked_behind_block_time_slot(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service, capacity=2)
    anon_request(conn, slot)
    # A direct status write (the system) would hide the hold: refused.
    assert (
        sqlstate_of(
            lambda: conn.execute(
                "update public.time_slot set status = 'blocked' where id = %s", [slot]
            )
        )
        == "CH001"
    )
    assert slot_row(conn, slot)["status"] == "available"


def test_started_slot_cannot_be_requested_and_the_sweep_marks_it_expired(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service)
    make_slot_started(conn, slot)
    assert slot_row(conn, slot)["status"] == "expired"  # any change re-derives the status
    conn.execute("update public.time_slot set status = 'available' where id = %s", [slot])
    assert slot_row(conn, slot)["status"] == "expired"
    assert sqlstate_of(lambda: anon_request(conn, slot)) == "CH005"

    untouched = create_slot(conn, doctor, service)
    # Time passing is no event: emulate it by moving the slot with its trigger off.
    conn.execute("alter table public.time_slot disable trigger maintain_time_slot")
    conn.execute(
        "update public.time_slot set start_time = now() - interval '3 hours',"
        " end_time = now() - interval '150 minutes' where id = %s",
        [untouched],
    )
    conn.execute("alter table public.time_slot enable trigger maintain_time_slot")
    assert slot_row(conn, untouched)["status"] == "available"  # time passed, no event yet
    assert sqlstate_of(lambda: anon_request(conn, untouched)) == "CH005"
    assert conn.execute("select public.expire_time_slots()").fetchone() == (1,)
    assert slot_row(conn, untouched)["status"] == "expired"
    assert conn.execute("select public.expire_time_slots()").fetchone() == (0,)


def test_blocked_slot_stays_blocked_when_it_starts(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service)
    conn.execute("select public.block_time_slot(%s)", [slot])
    make_slot_started(conn, slot)
    conn.execute("select public.expire_time_slots()")
    assert slot_row(conn, slot)["status"] == "blocked"
    assert conn.execute("select status from public.unblock_time_slot(%s)", [slot]).fetchone() == (
        "expired",
    )


def test_inactive_service_slots_cannot_be_requested(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service)
    conn.execute("update public.medical_service set is_active = false where id = %s", [service])
    assert sqlstate_of(lambda: anon_request(conn, slot)) == "CH005"


def test_unknown_slot_is_reported_as_missing(conn: psycopg.Connection) -> None:
    assert sqlstate_of(lambda: anon_request(conn, uuid.uuid4())) == "P0002"


def test_cancelling_releases_the_place_and_reservation_moves_only_from_confirmed(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service, capacity=1)
    patient = create_user(conn, "patient")
    with as_user(conn, patient):
        request_id = request(conn, slot)["request_id"]
    with as_user(conn, doctor):
        reservation = conn.execute(
            "select id from public.approve_reservation_request(%s)", [request_id]
        ).fetchone()
    assert reservation is not None
    assert slot_row(conn, slot)["status"] == "reserved"
    with as_user(conn, patient):
        cancelled = conn.execute(
            "select status, cancellation_reason, cancelled_at is not null"
            " from public.cancel_reservation(%s, 'Feeling better')",
            [reservation[0]],
        ).fetchone()
    assert cancelled == ("cancelled", "Feeling better", True)
    assert slot_row(conn, slot)["status"] == "available"
    assert_counters_true(conn, slot)
    for target in ("confirmed", "completed", "no_show"):
        with as_user(conn, doctor):
            assert (
                sqlstate_of(
                    lambda t=target: conn.execute(
                        "update public.reservation set status = %s where id = %s",
                        [t, reservation[0]],
                    )
                )
                == "CH001"
            )
    with as_user(conn, patient):
        assert (
            sqlstate_of(
                lambda: conn.execute("select public.cancel_reservation(%s, null)", [reservation[0]])
            )
            == "CH001"
        )
    assert_counters_true(conn, slot)


@pytest.mark.parametrize("outcome", ["completed", "no_show"])
def test_completed_and_no_show_keep_their_place_and_are_final(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID, outcome: str
) -> None:
    slot = create_slot(conn, doctor, service, capacity=1)
    reservation = conn.execute(
        "insert into public.reservation (slot_id, patient_name, patient_phone)"
        " values (%s, 'Walk-in', '+34600000001') returning id",
        [slot],
    ).fetchone()
    assert reservation is not None
    with as_user(conn, doctor):
        row = conn.execute(
            "update public.reservation set status = %s where id = %s"
            " returning no_show, completed_at is not null",
            [outcome, reservation[0]],
        ).fetchone()
    assert row == (outcome == "no_show", outcome == "completed")
    assert slot_row(conn, slot)["current_reservations"] == 1
    assert (
        sqlstate_of(
            lambda: conn.execute(
                "update public.reservation set status = 'cancelled' where id = %s", [reservation[0]]
            )
        )
        == "CH001"
    )
    assert_counters_true(conn, slot)


def test_requests_and_reservations_cannot_move_to_another_slot(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot, other = create_slot(conn, doctor, service), create_slot(conn, doctor, service)
    request_id = anon_request(conn, slot)["request_id"]
    assert (
        sqlstate_of(
            lambda: conn.execute(
                "update public.reservation_request set slot_id = %s where id = %s",
                [other, request_id],
            )
        )
        == "CH007"
    )
    reservation = conn.execute(
        "select id from public.approve_reservation_request(%s)", [request_id]
    ).fetchone()
    assert reservation is not None
    assert (
        sqlstate_of(
            lambda: conn.execute(
                "update public.reservation set slot_id = %s where id = %s", [other, reservation[0]]
            )
        )
        == "CH007"
    )


def test_direct_inserts_by_the_system_are_counted_and_checked(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service, capacity=2)
    insert = (
        "insert into public.reservation (slot_id, patient_name, patient_phone)"
        " values (%s, 'Walk-in', '+34600000001')"
    )
    conn.execute(insert, [slot])
    conn.execute(
        "insert into public.reservation_request (slot_id, patient_name, patient_phone,"
        " requested_time) values (%s, 'Caller', '+34600000002', now())",
        [slot],
    )
    assert sqlstate_of(lambda: conn.execute(insert, [slot])) == "CH002"
    assert (
        sqlstate_of(
            lambda: conn.execute(
                "insert into public.reservation (slot_id, patient_name, patient_phone, status)"
                " values (%s, 'Old', '+34600000003', 'completed')",
                [slot],
            )
        )
        == "CH001"
    )
    assert (
        sqlstate_of(
            lambda: conn.execute(
                "insert into public.reservation_request (slot_id, patient_name, patient_phone,"
                " requested_time, status) values (%s, 'X', '+34600000004', now(), 'approved')",
                [slot],
            )
        )
        == "CH001"
    )
    assert_counters_true(conn, slot)
    conn.execute("delete from public.reservation_request where slot_id = %s", [slot])
    conn.execute("delete from public.reservation where slot_id = %s", [slot])
    assert slot_row(conn, slot)["current_reservations"] == 0
    assert_counters_true(conn, slot)


def test_raising_capacity_reopens_a_full_slot_and_lowering_below_taken_fails(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service, capacity=1)
    anon_request(conn, slot)
    with as_user(conn, doctor):
        conn.execute("update public.time_slot set max_reservations = 2 where id = %s", [slot])
    assert slot_row(conn, slot)["status"] == "available"
    anon_request(conn, slot, phone="+34600999888")
    with as_user(conn, doctor):
        assert (
            sqlstate_of(
                lambda: conn.execute(
                    "update public.time_slot set max_reservations = 1 where id = %s", [slot]
                )
            )
            == "23514"
        )


def test_signed_in_patient_is_recorded_and_anon_patient_is_not(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service, capacity=3)
    patient = create_user(conn, "patient")
    with as_user(conn, patient):
        mine = request(conn, slot)["request_id"]
    theirs = anon_request(conn, slot, phone="+34 600-111 333")["request_id"]
    with as_service(conn):
        service_made = request(conn, slot, phone="+34600111444")["request_id"]
    rows = dict(
        conn.execute(
            "select id, (patient_id, patient_phone) from public.reservation_request"
            " where slot_id = %s",
            [slot],
        ).fetchall()
    )
    assert rows[uuid.UUID(mine)] == (str(patient), "+34600111222")
    assert rows[uuid.UUID(theirs)] == (None, "+34600111333")
    assert rows[uuid.UUID(service_made)] == (None, "+34600111444")


def test_request_details_are_stored(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service)
    details = {
        "email": "maria@example.test",
        "age": 42,
        "gender": "female",
        "chief_complaint": "Back pain",
        "symptoms": "Stiffness",
        "medical_history": "None",
        "current_medications": "Ibuprofen",
        "allergies": "Penicillin",
        "urgency_level": "high",
        "preferred_contact_method": "phone",
    }
    request_id = anon_request(conn, slot, name="  Maria Garcia ", details=details)["request_id"]
    row = conn.execute(
        "select patient_name, patient_email, patient_age, patient_gender, chief_complaint,"
        " symptoms, medical_history, current_medications, allergies, urgency_level,"
        " preferred_contact_method from public.reservation_request where id = %s",
        [request_id],
    ).fetchone()
    assert row == (
        "Maria Garcia",
        "maria@example.test",
        42,
        "female",
        "Back pain",
        "Stiffness",
        "None",
        "Ibuprofen",
        "Penicillin",
        "high",
        "phone",
    )


@pytest.mark.parametrize(
    ("name", "phone", "details"),
    [
        ("", "+34600111222", {}),
        ("   ", "+34600111222", {}),
        (None, "+34600111222", {}),
        ("x" * 256, "+34600111222", {}),
        ("Line\nbreak", "+34600111222", {}),
        ("Maria", "600111222", {}),
        ("Maria", "+0600111222", {}),
        ("Maria", "+34abc", {}),
        ("Maria", None, {}),
        ("Maria", "+34600111222", {"patient_id": str(uuid.uuid4())}),
        ("Maria", "+34600111222", {"status": "approved"}),
        ("Maria", "+34600111222", {"age": -1}),
        ("Maria", "+34600111222", {"age": 151}),
        ("Maria", "+34600111222", {"age": "40"}),
        ("Maria", "+34600111222", {"age": 40.5}),
        ("Maria", "+34600111222", {"email": "not-an-email"}),
        ("Maria", "+34600111222", {"urgency_level": "crisis"}),
        ("Maria", "+34600111222", {"preferred_contact_method": "pigeon"}),
        ("Maria", "+34600111222", {"symptoms": 42}),
        ("Maria", "+34600111222", {"symptoms": "x" * 4001}),
        ("Maria", "+34600111222", [1, 2]),
    ],
)
def test_request_reservation_refuses_invalid_input(
    conn: psycopg.Connection,
    doctor: uuid.UUID,
    service: uuid.UUID,
    name: str | None,
    phone: str | None,
    details: Any,
) -> None:
    slot = create_slot(conn, doctor, service)
    with as_anon(conn):
        assert (
            sqlstate_of(
                lambda: conn.execute(
                    "select public.request_reservation(%s, %s, %s, %s::jsonb)",
                    [slot, name, phone, json.dumps(details)],
                )
            )
            == "22023"
        )
    assert slot_row(conn, slot)["current_reservations"] == 0


def test_deleting_a_patients_account_keeps_their_bookings_and_counters(
    conn: psycopg.Connection, doctor: uuid.UUID, service: uuid.UUID
) -> None:
    slot = create_slot(conn, doctor, service, capacity=2)
    patient = create_user(conn, "patient")
    with as_user(conn, patient):
        booked = request(conn, slot)["request_id"]
        held = request(conn, slot, phone="+34600999888")["request_id"]
    conn.execute("select public.approve_reservation_request(%s)", [booked])
    conn.execute("delete from auth.users where id = %s", [patient])
    rows = conn.execute(
        "select status, patient_id from public.reservation_request where id in (%s, %s)"
        " order by status",
        [booked, held],
    ).fetchall()
    assert rows == [("approved", None), ("pending", None)]
    assert conn.execute(
        "select patient_id from public.reservation where request_id = %s", [booked]
    ).fetchone() == (None,)
    # The system may delete a decided request; its reservation stays, no longer linked.
    conn.execute("delete from public.reservation_request where id = %s", [booked])
    assert conn.execute(
        "select count(*) from public.reservation where slot_id = %s and request_id is null",
        [slot],
    ).fetchone() == (1,)
    assert_counters_true(conn, slot)
