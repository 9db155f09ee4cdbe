"""Each mapping rule of the backfill (README, "Backfilling legacy threads"), one by one."""

from __future__ import annotations

import json
import uuid

import psycopg

from tests.backfill.factories import (
    LEGACY_AT,
    backfill,
    legacy_prescription,
    make_legacy_world,
    outcomes,
    standard_thread,
    ticket_of_thread,
)
from tests.helpers import TestDatabase, add_member, as_user, create_provider, create_user
from tests.tickets.factories import make_reservation


def members_of(conn: psycopg.Connection, thread: uuid.UUID) -> set[uuid.UUID]:
    return {
        r[0]
        for r in conn.execute(
            "select profile_id from public.chat_thread_members where thread_id = %s", [thread]
        )
    }


def test_prescription_thread_with_its_prescription_becomes_a_sent_ticket_on_its_own_thread(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    appointment = make_reservation(conn, world.doctor, world.patient)
    rx = legacy_prescription(conn, world, appointment)
    thread = standard_thread(conn, world, order_id=appointment)
    before = conn.execute(
        "select updated_at, metadata from public.chat_threads where id = %s", [thread]
    ).fetchone()
    assert before is not None

    summary, _ = backfill(database.url)

    assert (summary.tickets_created, summary.threads_skipped) == (1, 0)
    ticket = ticket_of_thread(conn, thread)
    assert ticket is not None
    assert ticket["ticket_type"] == "prescription"
    assert ticket["status"] == "sent"
    assert ticket["patient_id"] == world.patient
    assert ticket["primary_provider_id"] == world.practice
    assert ticket["secondary_provider_id"] == world.pharmacy
    assert ticket["appointment_id"] == appointment
    assert ticket["prescription_id"] == rx
    assert ticket["required_provider_kind"] == "pharmacy"
    # Historic times: the thread's creation, the prescription's writing.
    assert ticket["created_at"] == LEGACY_AT
    assert ticket["sent_at"] == LEGACY_AT
    # The legacy thread is the ticket's one thread; it keeps order_id, metadata, messages and
    # its place in the inbox.
    threads = conn.execute(
        "select id, order_id, updated_at, metadata from public.chat_threads where ticket_id = %s",
        [ticket["id"]],
    ).fetchall()
    assert len(threads) == 1
    assert threads[0][0] == thread
    assert threads[0][1] == appointment
    assert threads[0][2] == before[0]
    assert threads[0][3]["target_id"] == str(world.pharmacy)
    assert threads[0][3]["prescription_id"] == str(rx)
    count = conn.execute(
        "select count(*) from public.chat_messages where thread_id = %s", [thread]
    ).fetchone()
    assert count == (3,)
    # Members are the ticket's parties: the pharmacy's staff too, since it was sent.
    assert members_of(conn, thread) == {
        world.doctor,
        world.patient,
        world.pharmacist,
        world.pharmacy_staff,
    }
    assert conn.execute(
        "select sent_at from public.prescriptions where id = %s", [rx]
    ).fetchone() == (LEGACY_AT,)
    assert conn.execute(
        "select sent_at, current_status from public.prescription_tracking where ticket_id = %s",
        [ticket["id"]],
    ).fetchone() == (LEGACY_AT, "sent")
    # The legacy lookup still finds the thread.
    found = conn.execute(
        "select id from public.chat_threads where order_id = %s and metadata->>'target_id' = %s",
        [appointment, str(world.pharmacy)],
    ).fetchall()
    assert found == [(thread,)]


def test_one_backfilled_timeline_row_per_ticket_and_no_notification_delivery_or_broadcast(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    appointment = make_reservation(conn, world.doctor, world.patient)
    legacy_prescription(conn, world, appointment)
    thread = standard_thread(conn, world, order_id=appointment)
    standard_thread(conn, world)  # no prescription: created
    notifications = conn.execute("select count(*) from public.notifications").fetchone()
    broadcasts = conn.execute("select count(*) from realtime.messages").fetchone()
    # The messaging issue's outbox, when it has landed: no delivery about history either.
    outbox = conn.execute("select to_regclass('public.notification_deliveries')").fetchone()
    deliveries = (
        conn.execute("select count(*) from public.notification_deliveries").fetchone()
        if outbox and outbox[0]
        else None
    )

    backfill(database.url)

    assert conn.execute("select count(*) from realtime.messages").fetchone() == broadcasts
    if deliveries is not None:
        assert (
            conn.execute("select count(*) from public.notification_deliveries").fetchone()
            == deliveries
        )
    rows = conn.execute(
        "select event_type, source, actor_kind, count(*) from public.ticket_timeline"
        " group by 1, 2, 3"
    ).fetchall()
    assert rows == [("backfilled", "backfill", "system", 2)]
    ticket = ticket_of_thread(conn, thread)
    assert ticket is not None
    details = conn.execute(
        "select to_status, details from public.ticket_timeline where ticket_id = %s",
        [ticket["id"]],
    ).fetchone()
    assert details is not None
    assert details[0] == "sent"
    assert details[1]["legacy_thread_id"] == str(thread)
    assert conn.execute("select count(*) from public.notifications").fetchone() == notifications


def test_other_order_types_are_skipped_with_a_reason(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    lab = standard_thread(conn, world, order_type="lab_order")
    untyped = standard_thread(conn, world, order_type=None)

    summary, _ = backfill(database.url)

    assert summary.reasons == {"unsupported order type": 2}
    assert ticket_of_thread(conn, lab) is None
    assert "unsupported order type" in outcomes(conn, lab)
    assert "unsupported order type" in outcomes(conn, untyped)


def test_patient_is_the_reservations_else_the_only_patient_member(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    other = create_user(conn, "patient")
    # The reservation's patient wins over a member who is a patient.
    by_reservation = standard_thread(
        conn,
        world,
        members=[(world.doctor, "doctor"), (other, "patient"), (world.pharmacist, "pharmacist")],
    )
    # Without a reservation behind order_id: the one member with role patient. The doctor has
    # a care relationship with them through another appointment.
    make_reservation(conn, world.doctor, world.patient)
    by_member = standard_thread(conn, world, order_id=uuid.uuid4())

    backfill(database.url)

    first = ticket_of_thread(conn, by_reservation)
    second = ticket_of_thread(conn, by_member)
    assert first is not None
    assert second is not None
    assert first["patient_id"] == world.patient
    assert second["patient_id"] == world.patient
    # A thread whose order_id is no reservation keeps no appointment, with a warning.
    assert second["appointment_id"] is None
    assert "appointment not kept" in outcomes(conn, by_member)


def test_no_patient_and_ambiguous_patient_are_skipped(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    second_patient = create_user(conn, "patient")
    nobody = standard_thread(
        conn,
        world,
        order_id=uuid.uuid4(),
        members=[(world.doctor, "doctor"), (world.pharmacist, "pharmacist")],
    )
    two = standard_thread(
        conn,
        world,
        order_id=uuid.uuid4(),
        members=[
            (world.doctor, "doctor"),
            (world.patient, "patient"),
            (second_patient, "patient"),
        ],
    )

    summary, _ = backfill(database.url)

    assert summary.reasons == {"no patient": 1, "ambiguous patient": 1}
    assert list(outcomes(conn, nobody)) == ["no patient"]
    assert list(outcomes(conn, two)) == ["ambiguous patient"]


def test_requester_follows_get_or_create_prescription_tickets_rule(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    clinic = create_provider(conn, "clinic")
    add_member(conn, clinic, world.doctor)
    # Two practices and no default: ambiguous.
    ambiguous = standard_thread(conn, world)
    backfill(database.url)
    assert ticket_of_thread(conn, ambiguous) is None
    assert "ambiguous requester" in outcomes(conn, ambiguous)

    # The default practice decides.
    conn.execute(
        "update public.profile set default_provider_id = %s where id = %s",
        [world.practice, world.doctor],
    )
    backfill(database.url)
    ticket = ticket_of_thread(conn, ambiguous)
    assert ticket is not None
    assert ticket["primary_provider_id"] == world.practice
    assert "ambiguous requester" not in outcomes(conn, ambiguous)


def test_requester_is_the_doctor_among_the_members_without_a_reservation(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    make_reservation(conn, world.doctor, world.patient)  # the care relationship
    by_doctor = standard_thread(conn, world, order_id=uuid.uuid4())
    other_doctor = create_user(conn, "doctor")
    create_provider(conn, "doctor", owner=other_doctor)
    two_doctors = standard_thread(
        conn,
        world,
        order_id=uuid.uuid4(),
        members=[(world.doctor, "doctor"), (other_doctor, "doctor"), (world.patient, "patient")],
    )
    # A doctor with no relationship to the patient opens nothing for them (access rules).
    stranger = create_user(conn, "doctor")
    create_provider(conn, "doctor", owner=stranger)
    no_care = standard_thread(
        conn,
        world,
        order_id=uuid.uuid4(),
        members=[(stranger, "doctor"), (world.patient, "patient")],
    )
    # Pharmacy staff are no requesters (ticket_openers).
    no_doctor = standard_thread(
        conn,
        world,
        order_id=uuid.uuid4(),
        members=[(world.pharmacist, "pharmacist"), (world.patient, "patient")],
    )

    backfill(database.url)

    ticket = ticket_of_thread(conn, by_doctor)
    assert ticket is not None
    assert ticket["primary_provider_id"] == world.practice
    assert list(outcomes(conn, two_doctors)) == ["ambiguous requester"]
    assert list(outcomes(conn, no_care)) == ["no care relationship"]
    assert list(outcomes(conn, no_doctor)) == ["no requester"]


def test_a_pharmacists_user_id_as_target_is_rewritten_to_the_pharmacy(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    thread = standard_thread(conn, world, target_id=world.pharmacy_staff)
    unknown = standard_thread(conn, world, target_id=uuid.uuid4())
    garbage = standard_thread(conn, world, target_id="pharmacy-7")

    backfill(database.url)

    ticket = ticket_of_thread(conn, thread)
    assert ticket is not None
    assert ticket["secondary_provider_id"] == world.pharmacy
    metadata = conn.execute(
        "select metadata from public.chat_threads where id = %s", [thread]
    ).fetchone()
    assert metadata is not None
    assert metadata[0]["target_id"] == str(world.pharmacy)
    assert metadata[0]["legacy_target_id"] == str(world.pharmacy_staff)
    assert list(outcomes(conn, unknown)) == ["unknown pharmacy"]
    assert list(outcomes(conn, garbage)) == ["unknown pharmacy"]


def test_prescription_from_metadata_else_the_one_of_the_appointment_and_pharmacy(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    appointment = make_reservation(conn, world.doctor, world.patient)
    named = legacy_prescription(conn, world, None)
    by_metadata = standard_thread(conn, world, order_id=appointment, prescription_id=named)
    appointment2 = make_reservation(conn, world.doctor, world.patient)
    found = legacy_prescription(conn, world, appointment2)
    by_appointment = standard_thread(conn, world, order_id=appointment2)
    appointment3 = make_reservation(conn, world.doctor, world.patient)
    legacy_prescription(conn, world, appointment3)
    legacy_prescription(conn, world, appointment3)
    two = standard_thread(conn, world, order_id=appointment3)

    backfill(database.url)

    first = ticket_of_thread(conn, by_metadata)
    second = ticket_of_thread(conn, by_appointment)
    third = ticket_of_thread(conn, two)
    assert first is not None
    assert second is not None
    assert third is not None
    assert (first["prescription_id"], first["status"]) == (named, "sent")
    assert (second["prescription_id"], second["status"]) == (found, "sent")
    assert (third["prescription_id"], third["status"]) == (None, "created")
    assert "ambiguous prescription" in outcomes(conn, two)


def test_a_prescription_that_does_not_fit_leaves_the_ticket_created_with_a_warning(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    other_patient = create_user(conn, "patient")
    wrong = legacy_prescription(conn, world, None, patient=other_patient)
    thread = standard_thread(conn, world, prescription_id=wrong)

    backfill(database.url)

    ticket = ticket_of_thread(conn, thread)
    assert ticket is not None
    assert (ticket["status"], ticket["prescription_id"], ticket["sent_at"]) == (
        "created",
        None,
        None,
    )
    found = outcomes(conn, thread)
    assert "another patient" in found["prescription does not fit"]
    metadata = conn.execute(
        "select metadata from public.chat_threads where id = %s", [thread]
    ).fetchone()
    assert metadata is not None
    assert "prescription_id" not in metadata[0]
    assert metadata[0]["legacy_prescription_id"] == str(wrong)
    # The pharmacy is no party to a draft: its pharmacist leaves the thread (reported), and the
    # thread takes no message until a prescription is linked (CH004).
    assert world.pharmacist not in members_of(conn, thread)
    assert "members removed" in found
    assert str(world.pharmacist) in found["members removed"]
    assert "(wrote messages)" in found["members removed"]


def test_a_prescription_whose_lifefile_order_another_holds_is_not_linked(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    appointment = make_reservation(conn, world.doctor, world.patient)
    legacy_prescription(conn, world, appointment, external_order_id="LF-1")
    other = make_reservation(conn, world.doctor, world.patient)
    legacy_prescription(conn, world, other, external_order_id="LF-1")
    thread = standard_thread(conn, world, order_id=appointment)

    backfill(database.url)

    ticket = ticket_of_thread(conn, thread)
    assert ticket is not None
    assert (ticket["status"], ticket["prescription_id"]) == ("created", None)
    assert "LF-1" in outcomes(conn, thread)["order id not unique"]


def test_an_appointment_of_another_patient_is_not_kept(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    other_patient = create_user(conn, "patient")
    make_reservation(conn, world.doctor, world.patient)  # the care relationship
    elsewhere = make_reservation(conn, world.doctor, other_patient)
    thread = standard_thread(
        conn,
        world,
        order_id=elsewhere,
        members=[(world.doctor, "doctor"), (world.patient, "patient")],
    )

    backfill(database.url)

    ticket = ticket_of_thread(conn, thread)
    assert ticket is not None
    # The reservation names the patient: other_patient, for whom the doctor has a relationship.
    assert ticket["patient_id"] == other_patient
    assert ticket["appointment_id"] == elsewhere


def test_lifefile_history_in_the_inbox_moves_the_ticket_forward_at_its_own_times(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    appointment = make_reservation(conn, world.doctor, world.patient)
    rx = legacy_prescription(conn, world, appointment, external_order_id="LF-77")
    thread = standard_thread(conn, world, order_id=appointment)
    events = []
    for status, at in [
        ("PROCESSING", "2025-03-05T09:00:00Z"),
        ("SHIPPED", "2025-03-06T09:00:00Z"),
        ("OUT_FOR_DELIVERY", "2025-03-07T08:00:00Z"),
    ]:
        payload = {
            "eventType": "prescription.status.update",
            "prescription": {"orderId": "LF-77"},
            "status": {"current": status, "changedAt": at},
            **(
                {"tracking": {"trackingNumber": "1Z999", "carrier": "UPS"}}
                if status == "SHIPPED"
                else {}
            ),
        }
        row = conn.execute(
            "select event_id from private.receive_lifefile_delivery(%s, '{}', 'test')",
            [json.dumps(payload)],
        ).fetchone()
        assert row is not None
        events.append(row[0])
    # The worker found no ticket for them: unmatched.
    conn.execute("select private.process_lifefile_events(10)")
    assert conn.execute(
        "select array_agg(distinct status) from private.lifefile_webhook_events"
    ).fetchone() == (["unmatched"],)
    notifications = conn.execute("select count(*) from public.notifications").fetchone()
    listener = database.connect()
    listener.execute("listen lifefile_webhook_events")

    backfill(database.url)

    ticket = ticket_of_thread(conn, thread)
    assert ticket is not None
    assert (ticket["status"], ticket["prescription_id"]) == ("out_for_delivery", rx)
    tracking = conn.execute(
        "select sent_at, processing_at, shipped_at, out_for_delivery_at, current_status,"
        " tracking_number, carrier from public.prescription_tracking where ticket_id = %s",
        [ticket["id"]],
    ).fetchone()
    assert tracking is not None
    assert tracking[0] == LEGACY_AT
    assert [t.isoformat() for t in tracking[1:4]] == [
        "2025-03-05T09:00:00+00:00",
        "2025-03-06T09:00:00+00:00",
        "2025-03-07T08:00:00+00:00",
    ]
    assert tracking[4:] == ("out_for_delivery", "1Z999", "UPS")
    assert conn.execute(
        "select array_agg(status order by occurred_at), bool_and(source = 'backfill')"
        " from public.prescription_status_events where ticket_id = %s",
        [ticket["id"]],
    ).fetchone() == (["processing", "shipped", "out_for_delivery"], True)
    assert conn.execute(
        "select count(*) from private.lifefile_webhook_events"
        " where status = 'processed' and ticket_id = %s",
        [ticket["id"]],
    ).fetchone() == (3,)
    # One timeline row, no notification, no worker woken.
    assert conn.execute(
        "select count(*) from public.ticket_timeline where ticket_id = %s", [ticket["id"]]
    ).fetchone() == (1,)
    assert conn.execute("select count(*) from public.notifications").fetchone() == notifications
    assert list(listener.notifies(timeout=0.5, stop_after=1)) == []


def test_a_live_ticket_of_the_same_appointment_and_pharmacy_records_the_legacy_thread(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    appointment = make_reservation(conn, world.doctor, world.patient)
    legacy = standard_thread(conn, world, order_id=appointment)
    with as_user(conn, world.doctor):
        live = conn.execute(
            "select id from public.get_or_create_prescription_ticket(%s, %s)",
            [appointment, world.pharmacy],
        ).fetchone()
    assert live is not None
    tickets_before = conn.execute("select count(*) from public.healthcare_tickets").fetchone()

    summary, _ = backfill(database.url)

    assert (summary.tickets_created, summary.threads_linked) == (0, 1)
    assert conn.execute("select count(*) from public.healthcare_tickets").fetchone() == (
        tickets_before
    )
    ticket = ticket_of_thread(conn, legacy)
    assert ticket is not None
    assert ticket["id"] == live[0]
    # The ticket keeps its own thread; the legacy one stays as it was.
    assert conn.execute(
        "select ticket_id from public.chat_threads where id = %s", [legacy]
    ).fetchone() == (None,)
    assert conn.execute(
        "select count(*) from public.chat_threads where ticket_id = %s", [live[0]]
    ).fetchone() == (1,)
    # The ticket's parties read the legacy conversation; a stranger does not.
    stranger = create_user(conn, "doctor")
    colleague = create_user(conn, "doctor")
    add_member(conn, world.practice, colleague)
    for user, threads, messages in [
        (world.patient, 1, 3),
        (colleague, 1, 3),
        (stranger, 0, 0),
    ]:
        with as_user(conn, user):
            assert conn.execute(
                "select count(*) from public.chat_threads where id = %s", [legacy]
            ).fetchone() == (threads,), user
            assert conn.execute(
                "select count(*) from public.chat_messages where thread_id = %s", [legacy]
            ).fetchone() == (messages,), user


def test_legacy_thread_of_a_draft_stays_hidden_from_the_pharmacy_until_it_is_sent(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    appointment = make_reservation(conn, world.doctor, world.patient)
    legacy = standard_thread(
        conn,
        world,
        order_id=appointment,
        members=[(world.doctor, "doctor"), (world.patient, "patient")],
    )
    with as_user(conn, world.doctor):
        live = conn.execute(
            "select id from public.get_or_create_prescription_ticket(%s, %s)",
            [appointment, world.pharmacy],
        ).fetchone()
    assert live is not None
    backfill(database.url)
    with as_user(conn, world.pharmacy_staff):
        assert conn.execute(
            "select count(*) from public.chat_messages where thread_id = %s", [legacy]
        ).fetchone() == (0,)
    rx = legacy_prescription(conn, world, appointment)
    with as_user(conn, world.doctor):
        conn.execute(
            "update public.healthcare_tickets set prescription_id = %s, status = 'sent'"
            " where id = %s",
            [rx, live[0]],
        )
    with as_user(conn, world.pharmacy_staff):
        assert conn.execute(
            "select count(*) from public.chat_messages where thread_id = %s", [legacy]
        ).fetchone() == (2,)


def test_two_legacy_threads_of_one_appointment_and_pharmacy_make_one_ticket(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    appointment = make_reservation(conn, world.doctor, world.patient)
    older = standard_thread(conn, world, order_id=appointment)
    newer = standard_thread(
        conn, world, order_id=appointment, created_at=LEGACY_AT.replace(year=2026)
    )
    # In separate batches: the first one looked at takes the ticket.
    appointment2 = make_reservation(conn, world.doctor, world.patient)
    pair = [
        standard_thread(conn, world, order_id=appointment2),
        standard_thread(conn, world, order_id=appointment2),
    ]

    summary, _ = backfill(database.url)
    assert summary.tickets_created == 2
    assert ticket_of_thread(conn, older) is not None
    assert ticket_of_thread(conn, newer) is None
    assert "duplicate thread" in outcomes(conn, newer)
    assert sorted(ticket_of_thread(conn, t) is None for t in pair) == [False, True]

    summary, _ = backfill(database.url, batch_size=1)
    assert summary.tickets_created == 0


def test_a_history_that_ends_cancelled_starts_the_ticket_cancelled_and_keeps_its_events(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    appointment = make_reservation(conn, world.doctor, world.patient)
    legacy_prescription(conn, world, appointment, external_order_id="LF-9")
    thread = standard_thread(conn, world, order_id=appointment)
    for status, at in [
        ("PROCESSING", "2025-03-05T09:00:00Z"),
        ("CANCELLED", "2025-03-06T09:00:00Z"),
    ]:
        payload = {
            "eventType": "prescription.status.update",
            "prescription": {"orderId": "LF-9"},
            "status": {"current": status, "changedAt": at},
        }
        conn.execute(
            "select private.receive_lifefile_delivery(%s, '{}', 'test')", [json.dumps(payload)]
        )
    conn.execute("select private.process_lifefile_events(10)")
    notifications = conn.execute("select count(*) from public.notifications").fetchone()

    backfill(database.url)

    ticket = ticket_of_thread(conn, thread)
    assert ticket is not None
    assert ticket["status"] == "cancelled"
    assert "LF-9" in outcomes(conn, thread)["history ends cancelled"]
    assert conn.execute(
        "select array_agg(distinct status) from private.lifefile_webhook_events"
    ).fetchone() == (["unmatched"],)
    assert conn.execute("select count(*) from public.notifications").fetchone() == notifications
