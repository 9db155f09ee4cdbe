"""Dirty marking and the worker's incremental refresh give exactly the rows a full recompute
gives, through late events, corrections, moves between pharmacies and deletions."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import psycopg

from app.jobs import Worker
from app.jobs.analytics import analytics_jobs
from tests.analytics.factories import (
    CONTRACT_COLUMNS,
    add_prescription,
    create_pharmacy,
    refresh,
    rollups,
    set_times,
)

ZONES = ("America/New_York", "Pacific/Kiritimati", "Europe/London")


def contract_rows(conn: psycopg.Connection) -> list[tuple]:
    return [tuple(r[c] for c in CONTRACT_COLUMNS) for r in rollups(conn)]


def random_times(rng: random.Random, start: datetime) -> dict[str, str | None]:
    """A random timeline around October 2026, including gaps, pickups and cancellations."""
    t = start + timedelta(hours=rng.randint(0, 24 * 40))
    times: dict[str, str | None] = {"sent_at": t.isoformat(sep=" ")}
    for column in ("received_at", "processing_at", "shipped_at", "delivered_at"):
        if rng.random() < 0.15:
            break
        t += timedelta(minutes=rng.randint(10, 60 * 40))
        times[column] = t.isoformat(sep=" ")
    ending = rng.random()
    if ending < 0.1:
        times["cancelled_at"] = (t + timedelta(hours=1)).isoformat(sep=" ")
    elif ending < 0.2 and "shipped_at" not in times:
        times["completed_at"] = (t + timedelta(hours=3)).isoformat(sep=" ")
    if rng.random() < 0.7:
        times["estimated_delivery"] = (start + timedelta(hours=rng.randint(24, 24 * 45))).isoformat(
            sep=" "
        )
    return times


def test_incremental_refresh_equals_full_recompute(conn: psycopg.Connection) -> None:
    rng = random.Random(12)
    pharmacies = [(create_pharmacy(conn, z)[0], z) for z in ZONES]
    start = datetime(2026, 9, 25)
    tracking = []
    for _ in range(30):
        pharmacy, zone = rng.choice(pharmacies)
        tracking.append((add_prescription(conn, pharmacy, zone, **random_times(rng, start)), zone))
    refresh(conn)
    # Late events and corrections, with refreshes in between.
    for round_ in range(4):
        for tracking_id, zone in rng.sample(tracking, 8):
            set_times(conn, tracking_id, zone, **random_times(rng, start))
        if round_ == 1:
            pharmacy, zone = pharmacies[0]
            conn.execute(
                "update public.prescription_tracking set pharmacy_id = %s where id = %s",
                [pharmacy, tracking[1][0]],
            )
            conn.execute("delete from public.prescription_tracking where id = %s", [tracking[2][0]])
            conn.execute(
                "update public.providers set timezone = 'Asia/Kolkata' where id = %s",
                [pharmacies[2][0]],
            )
        refresh(conn)
    incremental = contract_rows(conn)
    assert len(incremental) > 50
    assert conn.execute("select count(*) from private.fulfillment_dirty_periods").fetchone()[0] == 0
    conn.execute("truncate public.fulfillment_analytics")
    conn.execute("select private.recompute_fulfillment_analytics()")
    assert contract_rows(conn) == incremental


def test_a_ranged_recompute_for_one_pharmacy_touches_only_that_scope(conn) -> None:
    first, _ = create_pharmacy(conn, "UTC")
    second, _ = create_pharmacy(conn, "UTC")
    for pharmacy in (first, second):
        add_prescription(conn, pharmacy, "UTC", sent_at="2026-10-05 09:00")
        add_prescription(conn, pharmacy, "UTC", sent_at="2026-10-20 09:00")
    refresh(conn)
    before = contract_rows(conn)
    conn.execute("truncate public.fulfillment_analytics")
    written = conn.execute(
        "select private.recompute_fulfillment_analytics('2026-10-01', '2026-10-10', %s)",
        [first],
    ).fetchone()[0]
    after = rollups(conn)
    assert {r["pharmacy_id"] for r in after} == {first, None}
    assert {(r["grain"], str(r["period_start"])) for r in after if r["pharmacy_id"]} == {
        ("day", "2026-10-05"),
        ("week", "2026-10-05"),
        ("month", "2026-10-01"),
    }
    assert written == len(after)
    assert len(before) > len(after)


def test_the_worker_job_refreshes_dirty_periods(conn, database) -> None:
    pharmacy, _ = create_pharmacy(conn, "UTC")
    add_prescription(conn, pharmacy, "UTC", sent_at="2026-10-05 09:00")
    worker = Worker(database.url, analytics_jobs())
    with psycopg.connect(database.url, autocommit=True) as lane:
        assert worker.run_once(lane, worker.jobs[0]) > 0
    assert rollups(conn, pharmacy_id=pharmacy, grain="day")[0]["sent_count"] == 1
    state = conn.execute(
        "select last_recompute_at is not null from private.fulfillment_analytics_state"
    ).fetchone()[0]
    assert state


def test_a_change_marks_the_days_weeks_and_months_of_old_and_new_values(conn) -> None:
    pharmacy, _ = create_pharmacy(conn, "America/New_York")
    rx = add_prescription(
        conn,
        pharmacy,
        "America/New_York",
        sent_at="2026-10-30 09:00",
        received_at="2026-10-30 10:00",
        shipped_at="2026-10-31 09:00",
    )
    refresh(conn)
    set_times(conn, rx, "America/New_York", shipped_at="2026-11-02 09:00")
    marked = {
        (grain, str(start))
        for grain, start in conn.execute(
            "select grain, period_start from private.fulfillment_dirty_periods"
            " where pharmacy_id = %s",
            [pharmacy],
        )
    }
    # The old shipment day (Saturday 10-31), the new one (Monday 11-02), and the receipt day
    # (10-30) whose shipment lag changed — with their weeks and months.
    assert marked == {
        ("day", "2026-10-30"), ("day", "2026-10-31"), ("day", "2026-11-02"),
        ("week", "2026-10-26"), ("week", "2026-11-02"),
        ("month", "2026-10-01"), ("month", "2026-11-01"),
    }  # fmt: skip
