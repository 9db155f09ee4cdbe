"""Scheduling: slot generation from weekly rules, in the practitioner's time zone."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

import psycopg
import pytest

from tests.helpers import as_user, create_user
from tests.scheduling.factories import (
    create_practitioner,
    create_rule,
    create_service,
    create_slot,
    sqlstate_of,
)


def generate(
    conn: psycopg.Connection, practitioner: uuid.UUID, service: uuid.UUID, start: date, end: date
) -> int:
    row = conn.execute(
        "select public.generate_time_slots(%s, %s, %s, %s)", [practitioner, service, start, end]
    ).fetchone()
    assert row is not None
    return row[0]


def local_slots(
    conn: psycopg.Connection, practitioner: uuid.UUID, tz: str
) -> list[tuple[datetime, datetime, datetime]]:
    """(local start, local end, UTC start) of every slot, in time order."""
    return conn.execute(
        "select start_time at time zone %(tz)s, end_time at time zone %(tz)s,"
        " start_time at time zone 'UTC' from public.time_slot where profile_id = %(p)s"
        " order by start_time",
        {"tz": tz, "p": practitioner},
    ).fetchall()


# Weeks (Monday to Sunday) containing a daylight-saving change, all after "now" (Nov 2026).
DST_WEEKS = [
    # Europe/Madrid: CET (+01) -> CEST (+02) on Sunday 28 March 2027, back on 31 October.
    ("Europe/Madrid", date(2027, 3, 22), date(2027, 3, 28), 1, 2),
    ("Europe/Madrid", date(2027, 10, 25), date(2027, 10, 31), 2, 1),
    # America/New_York: EST (-05) -> EDT (-04) on Sunday 14 March 2027, back on 7 November.
    ("America/New_York", date(2027, 3, 8), date(2027, 3, 14), -5, -4),
    ("America/New_York", date(2027, 11, 1), date(2027, 11, 7), -4, -5),
]


@pytest.mark.parametrize(("tz", "monday", "sunday", "offset_before", "offset_after"), DST_WEEKS)
def test_working_hours_stay_local_across_a_daylight_saving_change(
    conn: psycopg.Connection,
    tz: str,
    monday: date,
    sunday: date,
    offset_before: int,
    offset_after: int,
) -> None:
    doctor = create_practitioner(conn, tz=tz)
    service = create_service(conn, doctor)
    for day_of_week in range(7):
        create_rule(conn, doctor, day_of_week, start="09:00", end="17:00", slot_duration=30)

    assert generate(conn, doctor, service, monday, sunday) == 7 * 16
    slots = local_slots(conn, doctor, tz)
    per_day = Counter(start.date() for start, _end, _utc in slots)
    assert per_day == {monday + timedelta(days=n): 16 for n in range(7)}
    assert {start.time() for start, _end, _utc in slots} == {
        (datetime(2000, 1, 1, 9) + timedelta(minutes=30 * n)).time() for n in range(16)
    }
    assert all(end - start == timedelta(minutes=30) for start, end, _utc in slots)
    # The same 09:00 local is a different UTC hour before and after the change.
    nine = {start.date(): utc for start, _end, utc in slots if start.time() == time(9)}
    assert nine[monday].hour == 9 - offset_before
    assert nine[sunday].hour == 9 - offset_after


def test_local_times_skipped_by_the_spring_change_get_no_slot(conn: psycopg.Connection) -> None:
    doctor = create_practitioner(conn, tz="Europe/Madrid")
    service = create_service(conn, doctor)
    create_rule(conn, doctor, 0, start="01:00", end="04:00", slot_duration=30)
    # Sunday 28 March 2027: 02:00-03:00 does not exist in Madrid.
    assert generate(conn, doctor, service, date(2027, 3, 28), date(2027, 3, 28)) == 4
    starts = [start.time() for start, _end, _utc in local_slots(conn, doctor, "Europe/Madrid")]
    assert starts == [time(1), time(1, 30), time(3), time(3, 30)]


def test_the_repeated_hour_of_the_autumn_change_is_read_as_standard_time_without_overlap(
    conn: psycopg.Connection,
) -> None:
    doctor = create_practitioner(conn, tz="America/New_York")
    service = create_service(conn, doctor)
    create_rule(conn, doctor, 0, start="00:00", end="03:00", slot_duration=60)
    # Sunday 7 November 2027: 01:00-02:00 happens twice; 01:00 is taken as EST (06:00 UTC).
    assert generate(conn, doctor, service, date(2027, 11, 7), date(2027, 11, 7)) == 3
    utc_starts = [utc.hour for _start, _end, utc in local_slots(conn, doctor, "America/New_York")]
    assert utc_starts == [4, 6, 7]


def test_generation_is_idempotent_and_respects_existing_slots_of_any_status(
    conn: psycopg.Connection,
) -> None:
    doctor = create_practitioner(conn, tz="Europe/Madrid")
    service = create_service(conn, doctor)
    create_rule(
        conn, doctor, 1, start="09:00", end="12:00", slot_duration=45, buffer_time=15, capacity=3
    )
    monday = date(2027, 1, 4)
    assert generate(conn, doctor, service, monday, monday + timedelta(days=6)) == 3
    assert generate(conn, doctor, service, monday, monday + timedelta(days=6)) == 0
    rows = conn.execute(
        "select (start_time at time zone 'Europe/Madrid')::time,"
        " (end_time at time zone 'Europe/Madrid')::time, max_reservations, status"
        " from public.time_slot where profile_id = %s order by start_time",
        [doctor],
    ).fetchall()
    assert rows == [
        (time(9), time(9, 45), 3, "available"),
        (time(10), time(10, 45), 3, "available"),
        (time(11), time(11, 45), 3, "available"),
    ]
    # A blocked slot still holds its time; a later run around it creates nothing over it.
    conn.execute(
        "delete from public.time_slot where profile_id = %s and"
        " (start_time at time zone 'Europe/Madrid')::time <> '10:00'",
        [doctor],
    )
    conn.execute("update public.time_slot set status = 'blocked' where profile_id = %s", [doctor])
    assert generate(conn, doctor, service, monday, monday) == 2
    assert generate(conn, doctor, service, monday, monday) == 0


def test_rules_apply_only_where_active_effective_and_for_their_service(
    conn: psycopg.Connection,
) -> None:
    doctor = create_practitioner(conn, tz="UTC")
    consult = create_service(conn, doctor, name="Consultation")
    follow_up = create_service(conn, doctor, name="Follow-up", duration=15)
    create_rule(
        conn,
        doctor,
        1,
        start="09:00",
        end="10:00",
        slot_duration=60,
        effective_from="2027-01-11",
        effective_to="2027-01-18",
    )
    create_rule(conn, doctor, 2, start="09:00", end="10:00", slot_duration=60, is_active=False)
    create_rule(conn, doctor, 3, start="09:00", end="10:00", slot_duration=60, service=consult)
    # Mondays 4, 11, 18, 25 January: only the 11th and 18th are in the rule's dates.
    assert generate(conn, doctor, follow_up, date(2027, 1, 4), date(2027, 1, 31)) == 2
    assert generate(conn, doctor, consult, date(2027, 1, 4), date(2027, 1, 31)) == 4
    by_service = dict(
        conn.execute(
            "select service_id, count(*) from public.time_slot group by service_id"
        ).fetchall()
    )
    assert by_service == {follow_up: 2, consult: 4}


def test_slots_that_would_have_started_are_not_created(conn: psycopg.Connection) -> None:
    doctor = create_practitioner(conn, tz="UTC")
    service = create_service(conn, doctor)
    for day_of_week in range(7):
        create_rule(conn, doctor, day_of_week, start="00:00", end="23:30", slot_duration=30)
    today = datetime.now(UTC).date()
    created = generate(conn, doctor, service, today - timedelta(days=3), today + timedelta(days=1))
    assert 47 <= created < 2 * 47  # tomorrow in full, what is left of today, no past day
    assert conn.execute("select bool_and(start_time > now()) from public.time_slot").fetchone() == (
        True,
    )


@pytest.mark.parametrize(
    ("start", "end", "sqlstate"),
    [
        (date(2027, 1, 1), date(2027, 4, 3), None),  # 93 days: the limit
        (date(2027, 1, 1), date(2027, 4, 4), "22023"),  # 94 days
        (date(2027, 1, 2), date(2027, 1, 1), "22023"),  # reversed
        (None, date(2027, 1, 1), "22023"),
    ],
)
def test_generation_refuses_ranges_over_93_days_or_reversed(
    conn: psycopg.Connection, start: date | None, end: date, sqlstate: str | None
) -> None:
    doctor = create_practitioner(conn, tz="UTC")
    service = create_service(conn, doctor)
    assert (
        sqlstate_of(
            lambda: conn.execute(
                "select public.generate_time_slots(%s, %s, %s, %s)", [doctor, service, start, end]
            )
        )
        == sqlstate
    )


def test_generation_refuses_a_service_of_another_practitioner_or_inactive(
    conn: psycopg.Connection,
) -> None:
    doctor, other = create_practitioner(conn), create_practitioner(conn)
    theirs = create_service(conn, other)
    inactive = create_service(conn, doctor, is_active=False)
    assert (
        sqlstate_of(lambda: generate(conn, doctor, theirs, date(2027, 1, 1), date(2027, 1, 7)))
        == "22023"
    )
    assert (
        sqlstate_of(lambda: generate(conn, doctor, inactive, date(2027, 1, 1), date(2027, 1, 7)))
        == "22023"
    )
    assert (
        sqlstate_of(
            lambda: generate(conn, uuid.uuid4(), theirs, date(2027, 1, 1), date(2027, 1, 7))
        )
        == "P0002"
    )


def test_practitioner_generates_own_slots_through_the_api_but_not_anothers(
    conn: psycopg.Connection,
) -> None:
    doctor, other = create_practitioner(conn, tz="UTC"), create_practitioner(conn, tz="UTC")
    service = create_service(conn, doctor)
    create_rule(conn, doctor, 1, start="09:00", end="11:00", slot_duration=60)
    with as_user(conn, doctor):
        assert generate(conn, doctor, service, date(2027, 1, 4), date(2027, 1, 4)) == 2
    with as_user(conn, other):
        assert (
            sqlstate_of(
                lambda: generate(conn, doctor, service, date(2027, 1, 11), date(2027, 1, 11))
            )
            == "CH008"
        )
    patient = create_user(conn, "patient")
    with as_user(conn, patient):
        assert (
            sqlstate_of(
                lambda: generate(conn, patient, service, date(2027, 1, 11), date(2027, 1, 11))
            )
            == "22023"
        )


def test_overlapping_slots_of_one_practitioner_are_refused_whatever_their_status(
    conn: psycopg.Connection,
) -> None:
    doctor, other = create_practitioner(conn), create_practitioner(conn)
    service, other_service = create_service(conn, doctor), create_service(conn, other)
    second = create_service(conn, doctor, name="Other service")
    start = datetime(2027, 2, 1, 9, tzinfo=UTC)
    slot = create_slot(conn, doctor, service, start=start, minutes=30)
    conn.execute("update public.time_slot set status = 'blocked' where id = %s", [slot])
    assert (
        sqlstate_of(lambda: create_slot(conn, doctor, second, start=start + timedelta(minutes=15)))
        == "23P01"
    )
    # Touching ends are not an overlap, and another practitioner is elsewhere.
    create_slot(conn, doctor, service, start=start + timedelta(minutes=30))
    create_slot(conn, other, other_service, start=start)


def test_slot_must_use_a_service_of_its_own_practitioner(conn: psycopg.Connection) -> None:
    doctor, other = create_practitioner(conn), create_practitioner(conn)
    theirs = create_service(conn, other)
    assert sqlstate_of(lambda: create_slot(conn, doctor, theirs)) == "23514"
