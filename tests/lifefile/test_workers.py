"""Several worker processes on one Lifefile inbox: each event processed exactly once, the events
of one order in arrival order, every ticket at its right final status."""

from __future__ import annotations

import json
import os
import signal
import time

import psycopg

from tests.helpers import MIGRATIONS, CarehubProcess, TestDatabase, create_provider, create_user

ORDERS = 500
# Each order's statuses, in the order Lifefile reports them: 6 x 500 = 3,000 events.
STEPS = ["RECEIVED", "PROCESSING", "READY_FOR_PICKUP", "SHIPPED", "OUT_FOR_DELIVERY", "DELIVERED"]
EXPECTED_PAIRS = {
    ("sent", "received"),
    ("received", "processing"),
    ("processing", "ready"),
    ("ready", "shipped"),
    ("shipped", "out_for_delivery"),
    ("out_for_delivery", "delivered"),
}
# Orders reported together: their events interleave, so one worker's batch holds later events
# of orders whose earlier ones another worker holds.
GROUP = 10


def create_sent_tickets(conn: psycopg.Connection, count: int) -> None:
    """``count`` sent prescription tickets of one doctor at one pharmacy, Lifefile orders
    LF-W-0 … LF-W-<count-1>."""
    patient = create_user(conn, "patient")
    doctor = create_user(conn, "doctor")
    pharmacist = create_user(conn, "pharmacist")
    practice = create_provider(conn, "doctor", owner=doctor)
    pharmacy = create_provider(conn, "pharmacy", owner=pharmacist)
    conn.execute(
        "with p as ("
        " insert into public.prescriptions (doctor_id, pharmacy_id, patient_id, medications,"
        " external_order_id)"
        " select %(doctor)s, %(pharmacy)s, %(patient)s, '[]', 'LF-W-' || n"
        " from generate_series(0, %(count)s - 1) as n returning id)"
        " insert into public.healthcare_tickets (ticket_type, status, patient_id,"
        " primary_provider_id, secondary_provider_id, required_provider_kind, prescription_id,"
        " created_by, title)"
        " select 'prescription', 'created', %(patient)s, %(practice)s, %(pharmacy)s, 'pharmacy',"
        " p.id, %(doctor)s, 'Prescription' from p",
        {
            "doctor": doctor,
            "pharmacy": pharmacy,
            "patient": patient,
            "practice": practice,
            "count": count,
        },
    )
    conn.execute("update public.healthcare_tickets set status = 'sent'")


def interleaved_events() -> list[dict[str, str]]:
    events = []
    for first in range(0, ORDERS, GROUP):
        for step, status in enumerate(STEPS):
            for order in range(first, first + GROUP):
                events.append(
                    {
                        "orderId": f"LF-W-{order}",
                        "rxStatus": status,
                        "changedAt": f"2026-11-20T10:{step:02d}:00Z",
                    }
                )
    return events


def test_three_workers_process_3000_interleaved_events_once_each_in_order(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    create_sent_tickets(conn, ORDERS)
    texts = [json.dumps(e) for e in interleaved_events()]
    stored = conn.execute(
        "select count(*) from private.receive_lifefile_delivery(%s, '{}', 'test', %s, null)",
        ["[" + ",".join(texts) + "]", texts],
    ).fetchone()
    assert stored == (len(STEPS) * ORDERS,)

    env = {**os.environ, "DATABASE_URL": database.url}
    workers = [CarehubProcess("worker", "--concurrency", "2", env=env) for _ in range(3)]
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "select count(*) from private.lifefile_webhook_events where status = 'pending'"
            ).fetchone()
            if waiting == (0,):
                break
            time.sleep(0.5)
    finally:
        codes = [w.stop(signal.SIGTERM) for w in workers]
    assert codes == [0, 0, 0], [w.output for w in workers]
    # Each worker took part, and each event was processed exactly once.
    assert all("lifefile_webhooks handled" in w.output for w in workers)
    assert conn.execute(
        "select status, attempts, count(*) from private.lifefile_webhook_events"
        " group by status, attempts"
    ).fetchall() == [("processed", 1, 3000)]
    assert conn.execute(
        "select count(*), count(distinct webhook_event_id) from public.prescription_status_events"
    ).fetchone() == (3000, 3000)
    # In order: each report found the tracking at the status just before its own.
    pairs = conn.execute(
        "select t.id, array_agg(array[h.previous_status, h.status])"
        " from public.prescription_tracking as t"
        " join public.prescription_status_events as h on h.tracking_id = t.id group by t.id"
    ).fetchall()
    assert len(pairs) == ORDERS
    out_of_order = [row for row in pairs if {tuple(p) for p in row[1]} != EXPECTED_PAIRS]
    assert out_of_order == []
    assert conn.execute(
        "select status, count(*) from public.healthcare_tickets group by status"
    ).fetchall() == [("delivered", ORDERS)]


def test_the_migration_gives_waiting_events_their_order_key(conn: psycopg.Connection) -> None:
    texts = [
        json.dumps({"orderId": "LF-K", "rxStatus": "RECEIVED"}),
        json.dumps({"rxNumber": "RX-K", "rxStatus": "RECEIVED"}),
        json.dumps({"orderReferenceId": "ref-k", "rxStatus": "RECEIVED"}),
    ]
    conn.execute(
        "select private.receive_lifefile_delivery(%s, '{}', 'test', %s, null)",
        ["[" + ",".join(texts) + "]", texts],
    )
    conn.execute("update private.lifefile_webhook_events set order_key = null")
    text = (MIGRATIONS / "20261201130000_lifefile_inbox_order.sql").read_text()
    start = text.index("update private.lifefile_webhook_events as e")
    conn.execute(text[start : text.index(";", start)])
    keys = conn.execute("select order_key from private.lifefile_webhook_events order by seq")
    assert keys.fetchall() == [("LF-K",), ("RX-K",), ("ref-k",)]
