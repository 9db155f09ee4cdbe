"""Each fulfilment measure on hand-made timelines with known answers: a pharmacy in New York
over the week daylight saving ends (2026-11-01), one on Kiritimati (UTC+14), a pickup, a
prescription cancelled after processing, one that failed, one without an estimate, one whose
estimate passed undelivered."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from tests.analytics.factories import (
    add_prescription,
    create_pharmacy,
    hours,
    one,
    refresh,
    rollups,
    set_times,
)

NY = "America/New_York"
KIRITIMATI = "Pacific/Kiritimati"
WEEK = date(2026, 10, 26)  # a Monday; New York leaves daylight saving on Sunday 2026-11-01


@pytest.fixture
def timelines(conn: psycopg.Connection) -> dict[str, object]:
    ny, ny_owner = create_pharmacy(conn, NY, "New York Pharmacy")
    kiri, kiri_owner = create_pharmacy(conn, KIRITIMATI, "Kiritimati Pharmacy")
    rx = {
        # processing 2 h, shipping 6 h (same day), delivery 48 h, on time; total 57 h
        "on_time": add_prescription(
            conn,
            ny,
            NY,
            sent_at="2026-10-26 09:00",
            received_at="2026-10-26 10:00",
            processing_at="2026-10-26 12:00",
            shipped_at="2026-10-26 18:00",
            delivered_at="2026-10-28 18:00",
            estimated_delivery="2026-10-29 00:00",
        ),
        # processing 4 h, shipping 20 h (next day), delivery 48 h, late; total 73 h
        "late": add_prescription(
            conn,
            ny,
            NY,
            sent_at="2026-10-27 08:00",
            received_at="2026-10-27 09:00",
            processing_at="2026-10-27 13:00",
            shipped_at="2026-10-28 09:00",
            delivered_at="2026-10-30 09:00",
            estimated_delivery="2026-10-29 12:00",
        ),
        # Across the DST change: received 22:00 EDT, processing 03:00 EST = 6 h, shipped the
        # next local day 6 h later, delivered 24 h later; no estimate; total 38 h.
        "dst_no_estimate": add_prescription(
            conn,
            ny,
            NY,
            sent_at="2026-10-31 20:00",
            received_at="2026-10-31 22:00",
            processing_at="2026-11-01 03:00",
            shipped_at="2026-11-01 09:00",
            delivered_at="2026-11-02 09:00",
        ),
        # Picked up: processing 1 h, ready, completed next day; total 25 h; its estimate does
        # not make it late (no delivery was promised).
        "pickup": add_prescription(
            conn,
            ny,
            NY,
            sent_at="2026-10-29 09:00",
            received_at="2026-10-29 10:00",
            processing_at="2026-10-29 11:00",
            ready_at="2026-10-29 15:00",
            completed_at="2026-10-30 10:00",
            estimated_delivery="2026-10-29 12:00",
        ),
        # Cancelled after processing: volumes only.
        "cancelled": add_prescription(
            conn,
            ny,
            NY,
            sent_at="2026-10-28 09:00",
            received_at="2026-10-28 10:00",
            processing_at="2026-10-28 11:00",
            cancelled_at="2026-10-28 15:00",
            estimated_delivery="2026-10-29 12:00",
        ),
        # Failed after processing: volumes only.
        "failed": add_prescription(
            conn,
            ny,
            NY,
            sent_at="2026-10-27 10:00",
            received_at="2026-10-27 12:00",
            processing_at="2026-10-27 14:00",
            failed_at="2026-10-28 10:00",
        ),
        # Shipped, never delivered, estimate passed: late; processing 2 h, shipping 2 h.
        "overdue": add_prescription(
            conn,
            ny,
            NY,
            sent_at="2026-10-30 09:00",
            received_at="2026-10-30 10:00",
            processing_at="2026-10-30 12:00",
            shipped_at="2026-10-30 14:00",
            estimated_delivery="2026-10-31 12:00",
        ),
        # UTC+14: received 23:00 local (09:00 UTC), shipped 01:00 local the next day (11:00
        # UTC, the same UTC day): a next-day shipment in the pharmacy's own dates.
        "kiritimati": add_prescription(
            conn,
            kiri,
            KIRITIMATI,
            sent_at="2026-10-28 22:00",
            received_at="2026-10-28 23:00",
            processing_at="2026-10-29 00:00",
            shipped_at="2026-10-29 01:00",
            delivered_at="2026-10-30 01:00",
            estimated_delivery="2026-10-31 00:00",
        ),
    }
    refresh(conn)
    return {"ny": ny, "ny_owner": ny_owner, "kiri": kiri, "kiri_owner": kiri_owner, "rx": rx}


def test_weekly_volumes_count_under_the_local_date_of_each_event(conn, timelines) -> None:
    week = one(rollups(conn, pharmacy_id=timelines["ny"], grain="week", period_start=WEEK))
    assert (
        week["sent_count"],
        week["received_count"],
        week["shipped_count"],
        week["delivered_count"],
        week["picked_up_count"],
        week["cancelled_count"],
        week["failed_count"],
    ) == (7, 7, 4, 2, 1, 1, 1)
    # The DST prescription's delivery (Monday 11-02) counts in the next week.
    next_week = one(
        rollups(conn, pharmacy_id=timelines["ny"], grain="week", period_start=date(2026, 11, 2))
    )
    assert (next_week["delivered_count"], next_week["sent_count"]) == (1, 0)
    assert next_week["delivery_p50"] is None  # its stage times count under its received date


def test_weekly_stage_times_exclude_cancelled_and_failed_and_cross_dst(conn, timelines) -> None:
    week = one(rollups(conn, pharmacy_id=timelines["ny"], grain="week", period_start=WEEK))
    # processing: 1, 2, 2, 4, 6 h (pickup, on-time, overdue, late, DST)
    assert week["processing_mean"] == hours(3)
    assert week["processing_p50"] == hours(2)
    assert week["processing_p90"] == hours(5.2)
    # shipping: 2, 6, 6, 20 h
    assert week["shipping_mean"] == hours(8.5)
    assert week["shipping_p50"] == hours(6)
    assert week["shipping_p90"] == hours(15.8)
    # delivery: 24 (the DST one: 24 real hours, not 25), 48, 48 h
    assert week["delivery_mean"] == hours(40)
    assert week["delivery_p50"] == hours(48)
    assert week["delivery_p90"] == hours(48)
    # total, sent → delivered or picked up: 25 (pickup), 38 (DST), 57, 73 h
    assert week["total_mean"] == hours(48.25)
    assert week["total_p50"] == hours(47.5)
    assert week["total_p90"] == hours(68.2)
    assert week["bottleneck"] == "delivery"


def test_weekly_rates(conn, timelines) -> None:
    week = one(rollups(conn, pharmacy_id=timelines["ny"], grain="week", period_start=WEEK))
    # on time: delivered by the estimate (on_time) over delivered-with-estimate (on_time, late)
    # plus undelivered past their estimate (overdue); the pickup, the cancelled prescription
    # and the one without an estimate are not in the denominator.
    assert float(week["on_time_rate"]) == pytest.approx(1 / 3)
    # shipped among the received that shipped: on_time and overdue the same day, late and the
    # DST one the next local day.
    assert float(week["same_day_shipment_rate"]) == 0.5
    assert float(week["next_day_shipment_rate"]) == 0.5


def test_the_dst_day_and_the_day_before(conn, timelines) -> None:
    ny = timelines["ny"]
    saturday = one(rollups(conn, pharmacy_id=ny, grain="day", period_start=date(2026, 10, 31)))
    assert (saturday["sent_count"], saturday["received_count"]) == (1, 1)
    assert saturday["processing_p50"] == hours(6)
    assert saturday["total_p50"] == hours(38)
    assert saturday["next_day_shipment_rate"] == 1
    assert saturday["same_day_shipment_rate"] == 0
    assert saturday["on_time_rate"] is None  # no estimate: the denominator is 0
    sunday = one(rollups(conn, pharmacy_id=ny, grain="day", period_start=date(2026, 11, 1)))
    assert (sunday["sent_count"], sunday["shipped_count"]) == (0, 1)
    assert sunday["processing_p50"] is None
    assert sunday["bottleneck"] is None
    # Days without activity have no row.
    assert rollups(conn, pharmacy_id=ny, grain="day", period_start=date(2026, 11, 3)) == []


def test_a_pharmacy_far_from_utc_counts_in_its_own_dates(conn, timelines) -> None:
    kiri = timelines["kiri"]
    day = one(rollups(conn, pharmacy_id=kiri, grain="day", period_start=date(2026, 10, 28)))
    assert (day["sent_count"], day["received_count"], day["shipped_count"]) == (1, 1, 0)
    assert day["same_day_shipment_rate"] == 0
    assert day["next_day_shipment_rate"] == 1
    assert day["on_time_rate"] == 1
    assert (day["processing_p50"], day["shipping_p50"], day["delivery_p50"]) == (
        hours(1),
        hours(1),
        hours(24),
    )
    assert day["total_p50"] == hours(27)
    next_day = one(rollups(conn, pharmacy_id=kiri, grain="day", period_start=date(2026, 10, 29)))
    assert next_day["shipped_count"] == 1


def test_the_pickup_counts_in_total_fulfilment_only(conn, timelines) -> None:
    ny = timelines["ny"]
    thursday = one(rollups(conn, pharmacy_id=ny, grain="day", period_start=date(2026, 10, 29)))
    assert thursday["processing_p50"] == hours(1)
    assert thursday["shipping_p50"] is None
    assert thursday["delivery_p50"] is None
    assert thursday["total_p50"] == hours(25)
    assert thursday["on_time_rate"] is None
    assert thursday["same_day_shipment_rate"] is None
    assert thursday["bottleneck"] == "processing"
    friday = one(rollups(conn, pharmacy_id=ny, grain="day", period_start=date(2026, 10, 30)))
    assert friday["picked_up_count"] == 1


def test_cancelled_after_processing_counts_in_volumes_only(conn, timelines) -> None:
    ny = timelines["ny"]
    wednesday = one(rollups(conn, pharmacy_id=ny, grain="day", period_start=date(2026, 10, 28)))
    # sent/received that day: cancelled only; shipped: late; delivered: on_time.
    assert (wednesday["sent_count"], wednesday["received_count"]) == (1, 1)
    assert (wednesday["cancelled_count"], wednesday["failed_count"]) == (1, 1)
    assert wednesday["processing_p50"] is None
    assert wednesday["on_time_rate"] is None


def test_months_split_at_the_local_month(conn, timelines) -> None:
    ny = timelines["ny"]
    october = one(rollups(conn, pharmacy_id=ny, grain="month", period_start=date(2026, 10, 1)))
    november = one(rollups(conn, pharmacy_id=ny, grain="month", period_start=date(2026, 11, 1)))
    assert (october["shipped_count"], november["shipped_count"]) == (3, 1)
    assert (october["delivered_count"], november["delivered_count"]) == (2, 1)
    assert october["processing_p50"] == hours(2)


def test_the_network_row_pools_every_pharmacy(conn, timelines) -> None:
    week = one(rollups(conn, pharmacy_id=None, grain="week", period_start=WEEK))
    assert (week["sent_count"], week["received_count"], week["shipped_count"]) == (8, 8, 5)
    # processing 1, 1, 2, 2, 4, 6 h: pooled percentiles, not an average of pharmacies'
    assert week["processing_p50"] == hours(2)
    assert week["processing_mean"] == hours(16 / 6)
    assert float(week["on_time_rate"]) == pytest.approx(2 / 4)


def test_a_late_event_recomputes_the_days_it_touches(conn, timelines) -> None:
    ny = timelines["ny"]
    # The overdue prescription turns out to have been delivered on time on Saturday.
    set_times(conn, timelines["rx"]["overdue"], NY, delivered_at="2026-10-31 10:00")
    assert (
        conn.execute(
            "select count(*) from private.fulfillment_dirty_periods where pharmacy_id = %s", [ny]
        ).fetchone()[0]
        > 0
    )
    refresh(conn)
    week = one(rollups(conn, pharmacy_id=ny, grain="week", period_start=WEEK))
    assert week["delivered_count"] == 3
    assert float(week["on_time_rate"]) == pytest.approx(2 / 3)
    saturday = one(rollups(conn, pharmacy_id=ny, grain="day", period_start=date(2026, 10, 31)))
    assert saturday["delivered_count"] == 1


def test_an_estimate_passing_undelivered_makes_the_prescription_late(conn, timelines) -> None:
    ny = timelines["ny"]
    rx = add_prescription(
        conn,
        ny,
        NY,
        sent_at="2026-10-29 09:00",
        received_at="2026-10-29 09:30",
        estimated_delivery="2099-01-01 00:00",
    )
    refresh(conn)
    week = one(rollups(conn, pharmacy_id=ny, grain="week", period_start=WEEK))
    assert float(week["on_time_rate"]) == pytest.approx(1 / 3)  # not due yet: not counted
    # Time passes: the estimate is a minute ago and the last run was two minutes ago.
    conn.execute(
        "update private.fulfillment_facts set due_at = now() - interval '1 minute'"
        " where tracking_id = %s and kind = 'on_time'",
        [rx],
    )
    conn.execute(
        "update private.fulfillment_analytics_state"
        " set estimates_checked_at = now() - interval '2 minutes'"
    )
    refresh(conn)
    week = one(rollups(conn, pharmacy_id=ny, grain="week", period_start=WEEK))
    assert float(week["on_time_rate"]) == pytest.approx(1 / 4)


def test_changing_the_pharmacy_time_zone_recomputes_all_its_periods(conn, timelines) -> None:
    kiri = timelines["kiri"]
    conn.execute("update public.providers set timezone = 'UTC' where id = %s", [kiri])
    refresh(conn)
    # In UTC it was received and shipped on 10-28 (09:00 and 11:00): a same-day shipment.
    day = one(rollups(conn, pharmacy_id=kiri, grain="day", period_start=date(2026, 10, 28)))
    assert (day["received_count"], day["shipped_count"]) == (1, 1)
    assert day["same_day_shipment_rate"] == 1
    next_day = one(rollups(conn, pharmacy_id=kiri, grain="day", period_start=date(2026, 10, 29)))
    assert (next_day["shipped_count"], next_day["delivered_count"]) == (0, 1)
