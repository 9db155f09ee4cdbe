"""Processing the Lifefile inbox in SQL: tracking, status history, the ticket's status,
notifications, out-of-order and unknown events, replay, and who may read the results."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from app.sqlfiles import split_statements
from tests.helpers import (
    PROJECT_ROOT,
    TestDatabase,
    as_anon,
    as_service,
    as_user,
    create_user,
    run_together,
)
from tests.lifefile.factories import (
    PrescriptionTicket,
    create_prescription_ticket,
    data_push_element,
    event,
    inbox,
    process_all,
    send_ticket,
    ticket_status,
)

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def receive(conn: psycopg.Connection, payload: Any) -> list[uuid.UUID]:
    """Store a delivery as the service does; returns the event ids."""
    if isinstance(payload, list):
        rows = conn.execute(
            "select event_id from private.receive_lifefile_delivery(%s, '{}', 'test', %s)",
            [json.dumps(payload), [json.dumps(p) for p in payload]],
        ).fetchall()
    else:
        rows = conn.execute(
            "select event_id from private.receive_lifefile_delivery(%s, '{}', 'test')",
            [json.dumps(payload)],
        ).fetchall()
    return [r[0] for r in rows]


def tracking(conn: psycopg.Connection, ticket: PrescriptionTicket) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "select * from public.prescription_tracking where ticket_id = %s", [ticket.ticket_id]
        ).fetchone()
    assert row is not None
    return row


def history(conn: psycopg.Connection, ticket: PrescriptionTicket) -> list[tuple[Any, ...]]:
    # In the order the events arrived (one batch shares one created_at).
    return conn.execute(
        "select h.status, h.previous_status, h.applied from public.prescription_status_events"
        " as h join private.lifefile_webhook_events as e on e.id = h.webhook_event_id"
        " where h.ticket_id = %s order by e.seq",
        [ticket.ticket_id],
    ).fetchall()


def event_status(conn: psycopg.Connection, event_id: uuid.UUID) -> str:
    row = conn.execute(
        "select status from private.lifefile_webhook_events where id = %s", [event_id]
    ).fetchone()
    assert row is not None
    return row[0]


def test_tracking_row_is_created_when_the_ticket_is_sent(conn: psycopg.Connection) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-1", rx_number="RX-1", send=False)
    assert conn.execute("select count(*) from public.prescription_tracking").fetchone() == (0,)
    send_ticket(conn, ticket)
    row = tracking(conn, ticket)
    assert row["prescription_id"] == ticket.prescription_id
    assert row["pharmacy_id"] == ticket.pharmacy
    assert (row["external_order_id"], row["rx_number"]) == ("LF-1", "RX-1")
    assert (row["medication_name"], row["quantity"]) == ("Amoxicillin 500 mg", 30)
    assert row["current_status"] == "sent"
    assert row["sent_at"] is not None


def test_ticket_cancelled_before_sending_gets_no_tracking(conn: psycopg.Connection) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-1", send=False)
    conn.execute(
        "update public.healthcare_tickets set status = 'cancelled' where id = %s",
        [ticket.ticket_id],
    )
    assert conn.execute("select count(*) from public.prescription_tracking").fetchone() == (0,)


def test_tracking_follows_the_prescriptions_lifefile_ids(conn: psycopg.Connection) -> None:
    ticket = create_prescription_ticket(conn)
    conn.execute(
        "update public.prescriptions set external_order_id = 'LF-7', rx_number = 'RX-7'"
        " where id = %s",
        [ticket.prescription_id],
    )
    row = tracking(conn, ticket)
    assert (row["external_order_id"], row["rx_number"]) == ("LF-7", "RX-7")


def test_tracking_follows_status_changes_made_in_the_app(conn: psycopg.Connection) -> None:
    ticket = create_prescription_ticket(conn)
    # The pharmacy works in the app, without Lifefile: the metrics still accrue.
    for status in ("received", "processing"):
        with as_user(conn, ticket.pharmacist):
            conn.execute(
                "update public.healthcare_tickets set status = %s where id = %s",
                [status, ticket.ticket_id],
            )
    row = tracking(conn, ticket)
    assert row["current_status"] == "processing"
    assert row["received_at"] is not None
    assert row["processing_time"] == row["processing_at"] - row["received_at"]
    with as_user(conn, ticket.pharmacist):
        conn.execute(
            "update public.healthcare_tickets set status = 'cancelled' where id = %s",
            [ticket.ticket_id],
        )
    row = tracking(conn, ticket)
    assert row["current_status"] == "cancelled"
    assert row["cancelled_at"] is not None


def test_full_lifecycle_sets_each_timestamp_and_the_four_metrics(
    conn: psycopg.Connection,
) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-1")
    steps = [
        ("SENT_TO_PHARMACY", 0),
        ("RECEIVED", 30),
        ("PROCESSING", 90),
        ("SHIPPED", 330),
        ("OUT_FOR_DELIVERY", 1500),
        ("DELIVERED", 1620),
    ]
    for status, minutes in steps:
        receive(
            conn,
            event(
                status,
                order_id="LF-1",
                changed_at=at(minutes),
                tracking={
                    "trackingNumber": "1Z 999",
                    "carrier": "UPS",
                    "estimatedDelivery": at(1700),
                },
            ),
        )
    assert process_all(conn) == 6
    row = tracking(conn, ticket)
    assert row["current_status"] == "delivered"
    assert row["sent_at"] == T0  # the pharmacy's time, earlier than our own send time
    assert row["received_at"] == T0 + timedelta(minutes=30)
    assert row["processing_at"] == T0 + timedelta(minutes=90)
    assert row["shipped_at"] == T0 + timedelta(minutes=330)
    assert row["out_for_delivery_at"] == T0 + timedelta(minutes=1500)
    assert row["delivered_at"] == T0 + timedelta(minutes=1620)
    assert row["processing_time"] == timedelta(hours=1)  # received -> processing
    assert row["shipping_time"] == timedelta(hours=4)  # processing -> shipped
    assert row["delivery_time"] == timedelta(hours=21, minutes=30)  # shipped -> delivered
    assert row["total_time"] == timedelta(hours=27)  # sent -> delivered
    assert (row["tracking_number"], row["carrier"]) == ("1Z 999", "UPS")
    assert row["tracking_url"] == "https://www.ups.com/track?tracknum=1Z999"
    assert row["estimated_delivery"] == T0 + timedelta(minutes=1700)
    assert ticket_status(conn, ticket.ticket_id) == "delivered"
    assert history(conn, ticket) == [
        ("sent", "sent", False),
        ("received", "sent", True),
        ("processing", "received", True),
        ("shipped", "processing", True),
        ("out_for_delivery", "shipped", True),
        ("delivered", "out_for_delivery", True),
    ]


def test_patient_and_doctor_are_notified_of_each_status_once(conn: psycopg.Connection) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-1")
    statuses = ["order_received", "order_processing", "order_shipped", "order_delivered"]
    for minutes, status in enumerate(statuses):
        receive(conn, event(status, order_id="LF-1", changed_at=at(minutes)))
    process_all(conn)
    # Ordered by the status's rank: one worker batch writes them all at one now().
    rows = conn.execute(
        "select n.recipient_id, n.type from public.notifications as n"
        " join public.ticket_statuses as s"
        " on s.ticket_type = 'prescription' and s.status = n.data ->> 'status'"
        " where n.ticket_id = %s and n.type <> 'prescription_sent' order by s.rank",
        [ticket.ticket_id],
    ).fetchall()
    expected_types = [
        "prescription_received",
        "prescription_processing",
        "prescription_shipped",
        "prescription_delivered",
    ]
    for recipient in (ticket.patient, ticket.doctor):
        assert [t for r, t in rows if r == recipient] == expected_types
    assert not [r for r, _ in rows if r == ticket.pharmacist]  # the pharmacy's own feed
    # Processing again (a replay of everything) notifies nobody twice.
    for row in inbox(conn):
        conn.execute("select private.replay_lifefile_event(%s)", [row["id"]])
    again = conn.execute(
        "select count(*) from public.notifications where ticket_id = %s and type <> %s",
        [ticket.ticket_id, "prescription_sent"],
    ).fetchone()
    assert again == (len(rows),)


def test_ticket_moves_as_the_system_with_source_lifefile(conn: psycopg.Connection) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-1")
    receive(conn, event("SHIPPED", order_id="LF-1", changed_at=at(5)))
    process_all(conn)
    rows = conn.execute(
        "select from_status, to_status, actor_kind, source from public.ticket_timeline"
        " where ticket_id = %s and event_type = 'status_changed' and to_status = 'shipped'",
        [ticket.ticket_id],
    ).fetchall()
    # sent -> shipped in one skip-forward step: one timeline row.
    assert rows == [("sent", "shipped", "system", "lifefile")]
    # The session's own app.source is left as it was.
    assert conn.execute("select current_setting('app.source', true)").fetchone() in [
        (None,),
        ("",),
    ]


def test_delivered_before_shipped_and_shipped_after_delivered_never_regress(
    conn: psycopg.Connection,
) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-1")
    receive(conn, event("DELIVERED", order_id="LF-1", changed_at=at(600)))
    process_all(conn)
    assert ticket_status(conn, ticket.ticket_id) == "delivered"
    # Shipped and processing arrive late.
    receive(
        conn,
        event(
            "SHIPPED",
            order_id="LF-1",
            changed_at=at(300),
            tracking={"trackingNumber": "TRK-1", "carrier": "FedEx"},
        ),
    )
    receive(conn, event("PROCESSING", order_id="LF-1", changed_at=at(60)))
    assert process_all(conn) == 2
    assert ticket_status(conn, ticket.ticket_id) == "delivered"
    row = tracking(conn, ticket)
    assert row["current_status"] == "delivered"
    assert row["shipped_at"] == T0 + timedelta(minutes=300)  # the late event fills the past
    assert row["delivery_time"] == timedelta(minutes=300)
    assert row["tracking_number"] == "TRK-1"  # details fill gaps, even from a late event
    rows = conn.execute(
        "select h.status, h.applied, h.note from public.prescription_status_events as h"
        " join private.lifefile_webhook_events as e on e.id = h.webhook_event_id"
        " where h.ticket_id = %s order by e.seq",
        [ticket.ticket_id],
    ).fetchall()
    assert [(s, a) for s, a, _ in rows] == [
        ("delivered", True),
        ("shipped", False),
        ("processing", False),
    ]
    assert "already delivered" in rows[1][2]
    assert [r["status"] for r in inbox(conn)] == ["processed"] * 3


def test_late_shipped_after_out_for_delivery_never_regresses_the_tracking_status(
    conn: psycopg.Connection,
) -> None:
    # Not a final status: only the rank comparison keeps current_status where it is.
    ticket = create_prescription_ticket(conn, order_id="LF-1")
    receive(conn, event("OUT_FOR_DELIVERY", order_id="LF-1", changed_at=at(400)))
    process_all(conn)
    receive(conn, event("SHIPPED", order_id="LF-1", changed_at=at(300)))
    assert process_all(conn) == 1
    row = tracking(conn, ticket)
    assert row["current_status"] == "out_for_delivery"
    assert row["shipped_at"] == T0 + timedelta(minutes=300)
    assert ticket_status(conn, ticket.ticket_id) == "out_for_delivery"
    assert history(conn, ticket)[-1][:1] == ("shipped",)


def test_older_event_arriving_late_keeps_the_newer_tracking_details(
    conn: psycopg.Connection,
) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-1")
    receive(
        conn,
        event(
            "OUT_FOR_DELIVERY",
            order_id="LF-1",
            changed_at=at(200),
            tracking={"trackingNumber": "NEW", "carrier": "DHL"},
        ),
    )
    receive(
        conn,
        event(
            "SHIPPED",
            order_id="LF-1",
            changed_at=at(100),
            tracking={"trackingNumber": "OLD", "carrier": "UPS"},
        ),
    )
    process_all(conn)
    row = tracking(conn, ticket)
    assert (row["tracking_number"], row["carrier"]) == ("NEW", "DHL")
    assert ticket_status(conn, ticket.ticket_id) == "out_for_delivery"


def test_data_push_elements_are_processed_in_order(conn: psycopg.Connection) -> None:
    ticket = create_prescription_ticket(conn, order_id="90001", rx_number="7001")
    receive(
        conn,
        [
            data_push_element("Rx Scheduled", order_id="90001", rx_number="7001"),
            data_push_element("Final Verification", order_id="90001", rx_number="7001"),
            data_push_element(
                "Rx Shipping Pickup",
                order_id="90001",
                rx_number="7001",
                trackingNumber="9400111",
                carrier="USPS",
            ),
        ],
    )
    assert process_all(conn) == 3
    assert [s for s, _, _ in history(conn, ticket)] == ["received", "processing", "shipped"]
    assert ticket_status(conn, ticket.ticket_id) == "shipped"
    assert tracking(conn, ticket)["tracking_url"] == (
        "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111"
    )


def test_data_push_falls_back_to_the_order_status_the_map_knows(
    conn: psycopg.Connection,
) -> None:
    ticket = create_prescription_ticket(conn, order_id="90002")
    receive(
        conn,
        [data_push_element("Something New", order_id="90002", orderStatus="SHIPPED")],
    )
    process_all(conn)
    assert ticket_status(conn, ticket.ticket_id) == "shipped"


@pytest.mark.parametrize("link", ["rx_number", "order_reference"])
def test_event_matches_by_rx_number_or_our_order_reference(
    conn: psycopg.Connection, link: str
) -> None:
    ticket = create_prescription_ticket(conn, rx_number="RX-55")
    if link == "rx_number":
        payload = event("RECEIVED", rx_number="RX-55")
    else:
        payload = data_push_element(
            "Fulfillment", order_id="LF-unknown", orderReferenceId=str(ticket.prescription_id)
        )
    receive(conn, payload)
    process_all(conn)
    assert ticket_status(conn, ticket.ticket_id) in ("received", "processing")
    # What the event taught us about the order is kept on the tracking row.
    if link == "order_reference":
        assert tracking(conn, ticket)["external_order_id"] == "LF-unknown"


def test_unknown_order_is_unmatched_then_linked_then_replayed(conn: psycopg.Connection) -> None:
    ticket = create_prescription_ticket(conn)  # no Lifefile ids yet
    [event_id] = receive(conn, event("PROCESSING", order_id="LF-LATE", changed_at=at(10)))
    process_all(conn)
    [row] = inbox(conn)
    assert row["status"] == "unmatched"
    assert row["attempts"] == 1
    assert row["next_attempt_at"] is not None
    assert "LF-LATE" in row["last_error"]
    assert "external_order_id" in row["last_error"]
    assert ticket_status(conn, ticket.ticket_id) == "sent"

    # The doctor's frontend records Lifefile's order id; then an operator replays.
    conn.execute(
        "update public.prescriptions set external_order_id = 'LF-LATE' where id = %s",
        [ticket.prescription_id],
    )
    result = conn.execute("select private.replay_lifefile_event(%s)", [event_id]).fetchone()
    assert result == ("processed",)
    assert ticket_status(conn, ticket.ticket_id) == "processing"
    assert event_status(conn, event_id) == "processed"


def test_link_appearing_makes_unmatched_events_due_at_once(conn: psycopg.Connection) -> None:
    ticket = create_prescription_ticket(conn)
    [event_id] = receive(conn, event("RECEIVED", rx_number="RX-9"))
    process_all(conn)
    assert event_status(conn, event_id) == "unmatched"
    assert process_all(conn) == 0  # its retry is not due yet
    with conn.cursor() as cur, conn.transaction():
        cur.execute("listen lifefile_webhook_events")
    conn.execute(
        "update public.prescriptions set rx_number = 'RX-9' where id = %s",
        [ticket.prescription_id],
    )
    assert [n.channel for n in conn.notifies(timeout=5, stop_after=1)] == [
        "lifefile_webhook_events"
    ]
    assert process_all(conn) == 1  # the sweep (or the woken worker) takes it now
    assert ticket_status(conn, ticket.ticket_id) == "received"


def test_unmatched_event_is_retried_with_growing_backoff_then_left_listed(
    conn: psycopg.Connection,
) -> None:
    [event_id] = receive(conn, event("SHIPPED", order_id="LF-NOWHERE"))
    delays = []
    for _ in range(10):
        conn.execute(
            "update private.lifefile_webhook_events set next_attempt_at = now() where id = %s"
            " and status <> 'pending'",
            [event_id],
        )
        assert process_all(conn) == 1
        row = conn.execute(
            "select status, attempts, next_attempt_at - now() from"
            " private.lifefile_webhook_events where id = %s",
            [event_id],
        ).fetchone()
        assert row is not None
        delays.append(row[2])
    assert [d is None for d in delays] == [False] * 9 + [True]
    minutes = [round(d.total_seconds() / 60) for d in delays[:9]]
    assert minutes == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    # Left listed as unmatched; the sweep no longer takes it.
    assert event_status(conn, event_id) == "unmatched"
    assert process_all(conn) == 0
    listed = conn.execute(
        "select count(*) from private.lifefile_webhook_events where status = 'unmatched'"
    ).fetchone()
    assert listed == (1,)


def test_unmapped_status_then_mapping_added_then_replayed(conn: psycopg.Connection) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-1")
    [event_id] = receive(conn, data_push_element("Compounding", order_id="LF-1"))
    process_all(conn)
    [row] = inbox(conn)
    assert row["status"] == "unmapped"
    assert "Compounding" in row["last_error"]
    assert "lifefile_status_map" in row["last_error"]
    assert ticket_status(conn, ticket.ticket_id) == "sent"
    # The map ignores case, so one row serves every spelling.
    conn.execute(
        "insert into private.lifefile_status_map (external_status, ticket_status)"
        " values ('COMPOUNDING', 'processing')"
    )
    replayed = conn.execute(
        "select event_id, event_status from private.replay_lifefile_events('unmapped')"
    ).fetchall()
    assert replayed == [(event_id, "processed")]
    assert ticket_status(conn, ticket.ticket_id) == "processing"


def test_status_map_refuses_a_status_prescription_tickets_do_not_have(
    conn: psycopg.Connection,
) -> None:
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(
            "insert into private.lifefile_status_map (external_status, ticket_status)"
            " values ('Done', 'closed')"
        )
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "insert into private.lifefile_status_map (external_status, ticket_status)"
            " values ('shipped', 'shipped')"
        )


def test_failed_processing_is_kept_then_replayed_after_the_fix(conn: psycopg.Connection) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-1")
    # Something outside processing breaks it (here: a DBA's faulty trigger).
    conn.execute(
        "create function public.broken() returns trigger language plpgsql as"
        " $$ begin raise exception 'disk quota exceeded'; end $$;"
        "create trigger broken before insert on public.prescription_status_events"
        " for each row execute function public.broken()"
    )
    [first] = receive(conn, event("RECEIVED", order_id="LF-1", changed_at=at(1)))
    [second] = receive(conn, event("PROCESSING", order_id="LF-1", changed_at=at(2)))
    assert process_all(conn) == 2  # one failure does not stop the batch
    rows = inbox(conn)
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert "disk quota exceeded" in rows[0]["last_error"]
    assert ticket_status(conn, ticket.ticket_id) == "sent"  # nothing half-done
    conn.execute("drop trigger broken on public.prescription_status_events")
    replayed = conn.execute(
        "select event_id, event_status from private.replay_lifefile_events('failed')"
    ).fetchall()
    assert replayed == [(first, "processed"), (second, "processed")]
    assert ticket_status(conn, ticket.ticket_id) == "processing"


def test_terminal_ticket_records_later_reports_without_moving(conn: psycopg.Connection) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-1")
    conn.execute(
        "update public.healthcare_tickets set status = 'cancelled' where id = %s",
        [ticket.ticket_id],
    )
    receive(conn, event("SHIPPED", order_id="LF-1"))
    process_all(conn)
    assert ticket_status(conn, ticket.ticket_id) == "cancelled"
    [(status, applied, note)] = conn.execute(
        "select status, applied, note from public.prescription_status_events"
    ).fetchall()
    assert (status, applied) == ("shipped", False)
    assert "cancelled" in note


def test_replay_refuses_invalid_and_unknown_events(conn: psycopg.Connection) -> None:
    [row] = conn.execute(
        "select event_id from private.receive_lifefile_delivery('{', '{}', 'x', null, 'bad')"
    ).fetchall()
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="cannot be replayed"):
        conn.execute("select private.replay_lifefile_event(%s)", [row[0]])
    with pytest.raises(psycopg.errors.NoDataFound):
        conn.execute("select private.replay_lifefile_event(%s)", [uuid.uuid4()])
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="cannot replay"):
        conn.execute("select * from private.replay_lifefile_events('processed')")


def test_replaying_a_processed_event_has_no_second_effect(conn: psycopg.Connection) -> None:
    ticket = create_prescription_ticket(conn, order_id="LF-1")
    [event_id] = receive(conn, event("RECEIVED", order_id="LF-1"))
    process_all(conn)
    before = history(conn, ticket)
    assert conn.execute("select private.replay_lifefile_event(%s)", [event_id]).fetchone() == (
        "processed",
    )
    # Even an operator resetting it by hand does not record it twice.
    conn.execute(
        "update private.lifefile_webhook_events set status = 'pending' where id = %s", [event_id]
    )
    process_all(conn)
    assert history(conn, ticket) == before
    assert event_status(conn, event_id) == "processed"


def test_two_workers_share_the_queue_without_double_processing(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    tickets = [create_prescription_ticket(conn, order_id=f"LF-{n}") for n in range(20)]
    for n in range(20):
        receive(conn, event("RECEIVED", order_id=f"LF-{n}"))
    connections = [database.connect(), database.connect()]

    def work(index: int) -> int:
        row = connections[index].execute("select private.process_lifefile_events(100)").fetchone()
        assert row is not None
        return row[0]

    counts = run_together(2, work)
    assert sum(counts) == 20
    assert all(ticket_status(conn, t.ticket_id) == "received" for t in tickets)
    assert conn.execute("select count(*) from public.prescription_status_events").fetchone() == (
        20,
    )


# -- who may read tracking and history -----------------------------------------------------


@pytest.fixture
def tracked(conn: psycopg.Connection) -> PrescriptionTicket:
    ticket = create_prescription_ticket(conn, order_id="LF-1")
    receive(conn, event("RECEIVED", order_id="LF-1"))
    process_all(conn)
    return ticket


@pytest.mark.parametrize("table", ["prescription_tracking", "prescription_status_events"])
@pytest.mark.parametrize("who", ["patient", "doctor", "pharmacist"])
def test_ticket_parties_read_tracking_and_history(
    conn: psycopg.Connection, tracked: PrescriptionTicket, table: str, who: str
) -> None:
    with as_user(conn, getattr(tracked, who)):
        rows = conn.execute(f"select ticket_id from public.{table}").fetchall()
    assert rows == [(tracked.ticket_id,)]


@pytest.mark.parametrize("table", ["prescription_tracking", "prescription_status_events"])
def test_other_users_see_no_tracking_or_history(
    conn: psycopg.Connection, tracked: PrescriptionTicket, table: str
) -> None:
    stranger = create_user(conn, "patient")
    other_pharmacist = create_user(conn, "pharmacist")
    for user in (stranger, other_pharmacist):
        with as_user(conn, user):
            assert conn.execute(f"select * from public.{table}").fetchall() == []


@pytest.mark.parametrize("table", ["prescription_tracking", "prescription_status_events"])
def test_anon_is_refused_tracking_and_history(
    conn: psycopg.Connection, tracked: PrescriptionTicket, table: str
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_anon(conn):
        conn.execute(f"select * from public.{table}")


@pytest.mark.parametrize(
    "statement",
    [
        "update public.prescription_tracking set current_status = 'delivered'",
        "delete from public.prescription_tracking",
        "update public.prescription_status_events set status = 'delivered'",
        "delete from public.prescription_status_events",
        "insert into public.prescription_status_events (ticket_id, tracking_id, status,"
        " occurred_at, received_at) select ticket_id, id, 'delivered', now(), now()"
        " from public.prescription_tracking",
    ],
)
@pytest.mark.parametrize("who", ["patient", "doctor", "pharmacist"])
def test_only_the_system_writes_tracking_and_history(
    conn: psycopg.Connection, tracked: PrescriptionTicket, statement: str, who: str
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_user(conn, getattr(tracked, who)):
        conn.execute(statement)


def test_service_role_reads_all_tracking(
    conn: psycopg.Connection, tracked: PrescriptionTicket
) -> None:
    with as_service(conn):
        assert conn.execute("select count(*) from public.prescription_tracking").fetchone() == (1,)


@pytest.mark.parametrize("who", ["patient", "doctor", "pharmacist"])
def test_users_cannot_reach_the_inbox_or_its_functions(
    conn: psycopg.Connection, tracked: PrescriptionTicket, who: str
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_user(conn, getattr(tracked, who)):
        conn.execute("select * from private.lifefile_webhook_events")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_user(conn, getattr(tracked, who)):
        conn.execute("select private.process_lifefile_events(1)")


def test_seed_gives_the_demo_prescription_lifefile_history_once(conn: psycopg.Connection) -> None:
    seed = (PROJECT_ROOT / "supabase" / "seed.sql").read_text()
    for _ in range(2):  # re-runnable
        with conn.transaction():
            for statement in split_statements(seed):
                conn.execute(statement.text)
    rows = conn.execute(
        "select t.external_order_id, t.current_status, t.processing_time,"
        " array_agg(h.status order by h.occurred_at)"
        " from public.prescription_tracking as t"
        " join public.prescription_status_events as h on h.tracking_id = t.id"
        " group by t.id"
    ).fetchall()
    assert rows == [
        ("LF-DEMO-1001", "processing", timedelta(minutes=25), ["sent", "received", "processing"])
    ]
    assert {r["status"] for r in inbox(conn)} == {"processed"}
    assert len(inbox(conn)) == 3
