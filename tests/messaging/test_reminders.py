"""Appointment reminders 24 h and 2 h before time_slot.start_time: scheduled at booking (none
for a moment already past), cancelled with the reservation, following a moved slot, in the
patient's zone across daylight saving; quiet hours in two zones."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

from app.jobs.messaging import Sender
from tests.helpers import as_user, create_user
from tests.messaging.conftest import ZONES, consenting_patient, deliveries, run_sender
from tests.messaging.twilio_double import TwilioDouble
from tests.scheduling.factories import create_practitioner, create_service, create_slot
from tests.tickets.factories import make_world, raises_sqlstate, ticket_at

PHONE = "+15551230004"
REMINDERS = ("reservation_reminder_24h", "reservation_reminder_2h")


def book(
    conn: psycopg.Connection, start: datetime, *, tz: str | None = None
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A confirmed reservation of a consenting patient at ``start``: (practitioner, slot,
    reservation)."""
    practitioner = create_practitioner(conn, tz="Europe/Madrid")
    service = create_service(conn, practitioner)
    slot = create_slot(conn, practitioner, service, start=start)
    patient = create_user(conn, "patient")
    consenting_patient(conn, patient, PHONE, tz=tz or "Europe/Madrid")
    row = conn.execute(
        "insert into public.reservation (profile_id, slot_id, service_id, patient_id,"
        " patient_name, patient_phone) values (%s, %s, %s, %s, 'Alex Example', %s) returning id",
        [practitioner, slot, service, patient, PHONE],
    ).fetchone()
    assert row is not None
    return practitioner, slot, row[0]


def reminders(conn: psycopg.Connection, reservation: uuid.UUID) -> dict[tuple[str, str], str]:
    return {
        (r["event"], r["appointment_time"].isoformat()): r["status"]
        for r in deliveries(conn, reservation_id=reservation)
        if r["event"] in REMINDERS
    }


def flags(conn: psycopg.Connection, reservation: uuid.UUID) -> tuple:
    row = conn.execute(
        "select reminder_24h_scheduled, reminder_24h_sent, reminder_2h_scheduled,"
        " reminder_2h_sent from public.reservation where id = %s",
        [reservation],
    ).fetchone()
    assert row is not None
    return tuple(row)


def in_days(days: int, hour: int = 12, tz: str = "Europe/Madrid") -> datetime:
    local = datetime.now(ZoneInfo(tz)) + timedelta(days=days)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0)


def test_booking_schedules_both_reminders_and_cancelling_cancels_them(
    conn: psycopg.Connection,
) -> None:
    _practitioner, _slot, reservation = book(conn, in_days(3))
    assert set(reminders(conn, reservation).values()) == {"scheduled"}
    assert len(reminders(conn, reservation)) == 2
    assert flags(conn, reservation) == (True, False, True, False)
    conn.execute("select public.cancel_reservation(%s, 'ill')", [reservation])
    assert set(reminders(conn, reservation).values()) == {"cancelled"}
    assert flags(conn, reservation) == (False, False, False, False)
    events = {r["event"] for r in deliveries(conn, reservation_id=reservation)}
    assert "reservation_cancelled" in events


def test_a_moved_slot_gets_reminders_for_its_new_time(conn: psycopg.Connection) -> None:
    practitioner, slot, reservation = book(conn, in_days(3))
    new_start = in_days(5, hour=11)
    with as_user(conn, practitioner) as c:
        c.execute("select public.move_time_slot(%s, %s)", [slot, new_start])
    rows = deliveries(conn, reservation_id=reservation)
    old = [r for r in rows if r["event"] in REMINDERS and r["appointment_time"] != new_start]
    new = [r for r in rows if r["event"] in REMINDERS and r["appointment_time"] == new_start]
    assert {(r["status"], r["suppressed_reason"]) for r in old} == {("cancelled", "rescheduled")}
    assert {r["status"] for r in new} == {"scheduled"}
    assert len(new) == 2
    assert flags(conn, reservation) == (True, False, True, False)


def test_only_the_practitioner_moves_a_slot_and_not_into_the_past(
    conn: psycopg.Connection,
) -> None:
    practitioner, slot, _reservation = book(conn, in_days(3))
    stranger = create_user(conn, "doctor")
    with raises_sqlstate("CH008"), as_user(conn, stranger) as c:
        c.execute("select public.move_time_slot(%s, %s)", [slot, in_days(4)])
    with raises_sqlstate("CH005"), as_user(conn, practitioner) as c:
        c.execute("select public.move_time_slot(%s, now() - interval '1 hour')", [slot])


def test_booked_less_than_two_hours_ahead_gets_no_reminder(conn: psycopg.Connection) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=90)
    _practitioner, _slot, reservation = book(conn, start)
    assert reminders(conn, reservation) == {}
    assert flags(conn, reservation) == (False, False, False, False)


def test_a_reminder_across_daylight_saving_shows_the_local_time(conn: psycopg.Connection) -> None:
    # Madrid moves to summer time on 28 March 2027 at 02:00: 10:00 that day is 08:00 UTC; the
    # 24 h reminder goes at 10:00 the day before, winter time (09:00 UTC, 23 hours earlier).
    start = datetime(2027, 3, 28, 8, 0, tzinfo=UTC)
    _practitioner, _slot, reservation = book(conn, start)
    rows = {r["event"]: r for r in deliveries(conn, reservation_id=reservation)}
    assert rows["reservation_reminder_24h"]["not_before"] == datetime(2027, 3, 27, 9, tzinfo=UTC)
    assert rows["reservation_reminder_2h"]["not_before"] == datetime(2027, 3, 28, 6, tzinfo=UTC)
    # The text names the appointment in the patient's summer time. Read from the values the
    # sender renders the body with, not from a send: a send now would wait for the end of
    # Madrid's quiet hours whenever the test runs in its evening or night.
    for event in REMINDERS:
        row = conn.execute(
            "select private.notification_values(%s, '', '') ->> 'appointment_time'",
            [rows[event]["id"]],
        ).fetchone()
        assert row == ("Sun 28 Mar 10:00",)


def test_quiet_hours_defer_to_eight_in_two_time_zones(conn: psycopg.Connection) -> None:
    for zone, at, expected in (
        ("Europe/Madrid", "2027-01-10 22:30+00", "2027-01-11 07:00+00"),
        ("America/New_York", "2027-01-10 03:00+00", "2027-01-10 13:00+00"),
        ("America/New_York", "2027-01-10 15:00+00", "2027-01-10 15:00+00"),
        # The night before New York's change to summer time: 08:00 EDT is 12:00 UTC.
        ("America/New_York", "2027-03-14 04:00+00", "2027-03-14 12:00+00"),
    ):
        row = conn.execute(
            "select private.after_quiet_hours(%s::timestamptz, %s) = %s::timestamptz",
            [at, zone, expected],
        ).fetchone()
        assert row == (True,), (zone, at)


def test_a_status_at_night_is_deferred_to_the_patients_morning(conn: psycopg.Connection) -> None:
    now = datetime.now(UTC)
    night = [z for z in ZONES if (h := now.astimezone(ZoneInfo(z)).hour) >= 22 or h < 6][:2]
    assert night
    for zone in night:
        world = make_world(conn)
        consenting_patient(conn, world.patient, PHONE, tz=zone)
        ticket = ticket_at(conn, world, "prescription", "sent")
        [row] = deliveries(conn, ticket_id=ticket, channel="sms")
        local = row["not_before"].astimezone(ZoneInfo(zone))
        assert row["status"] == "scheduled"
        assert (local.hour, local.minute) == (8, 0)


def test_a_two_hour_reminder_that_quiet_hours_make_too_late_is_cancelled(
    conn: psycopg.Connection,
) -> None:
    start = in_days(3, hour=8).replace(minute=30)
    _practitioner, _slot, reservation = book(conn, start)
    rows = {r["event"]: r for r in deliveries(conn, reservation_id=reservation)}
    two = rows["reservation_reminder_2h"]
    assert (two["status"], two["suppressed_reason"]) == ("cancelled", "too_late_after_quiet_hours")
    assert rows["reservation_reminder_24h"]["status"] == "scheduled"


def test_a_reminder_for_a_cancelled_reservation_is_not_sent_late(
    conn: psycopg.Connection, double: TwilioDouble, sender: Sender
) -> None:
    _practitioner, _slot, reservation = book(conn, in_days(3))
    # Its moment comes; meanwhile the reservation was cancelled behind the outbox's back.
    conn.execute(
        "update public.notification_deliveries set not_before = now() where reservation_id = %s",
        [reservation],
    )
    conn.execute("alter table public.reservation disable trigger queue_reservation_notifications")
    conn.execute("update public.reservation set status = 'cancelled' where id = %s", [reservation])
    conn.execute("alter table public.reservation enable trigger queue_reservation_notifications")
    run_sender(sender, conn)
    statuses = {r["event"]: r["status"] for r in deliveries(conn, reservation_id=reservation)}
    assert statuses["reservation_reminder_24h"] == "cancelled"
    assert all("Reminder" not in m["body"] for m in double.sent_to(PHONE))


def test_an_anonymous_booking_phone_gets_its_hold_ended_message(conn: psycopg.Connection) -> None:
    practitioner = create_practitioner(conn, tz="Europe/Madrid")
    service = create_service(conn, practitioner)
    slot = create_slot(conn, practitioner, service, start=in_days(2))
    request = conn.execute(
        "insert into public.reservation_request (slot_id, patient_name, patient_phone,"
        " requested_time) select %s, 'Anon Person', '+15557770001', start_time"
        " from public.time_slot where id = %s returning id",
        [slot, slot],
    ).fetchone()
    assert request is not None
    conn.execute("select public.reject_reservation_request(%s, 'busy')", [request[0]])
    [row] = deliveries(conn, request_id=request[0])
    assert row["event"] == "reservation_rejected"
    assert row["recipient_id"] is None
    assert row["address"] == "+15557770001"
    assert row["status"] in ("queued", "scheduled")
