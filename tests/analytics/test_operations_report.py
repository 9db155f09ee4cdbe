"""ticket_operations_report on hand-made ticket histories with known answers, and who sees
which rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from tests.helpers import as_anon, as_user, create_provider, create_user
from tests.lifefile.factories import create_prescription_ticket

WEEK = date(2026, 10, 5)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def history(conn: psycopg.Connection) -> dict[str, object]:
    t1 = create_prescription_ticket(conn)
    t2 = create_prescription_ticket(conn)
    t3 = create_prescription_ticket(conn)
    pharmacy = t1.pharmacy
    # Shape the history as it would have happened in October (bypassing the append-only and
    # transition guards, which only a superuser in replica mode can do).
    conn.execute("set session_replication_role = replica")
    try:
        for ticket, sent, received in (
            (t1, "2026-10-05 10:00", "2026-10-05 12:00"),
            (t2, "2026-10-06 10:00", "2026-10-06 20:00"),
            (t3, "2026-10-08 10:00", None),
        ):
            conn.execute(
                "update public.healthcare_tickets set secondary_provider_id = %s, sent_at = %s,"
                " status = %s where id = %s",
                [pharmacy, at(sent), "received" if received else "sent", ticket.ticket_id],
            )
            conn.execute(
                "delete from public.ticket_timeline where ticket_id = %s", [ticket.ticket_id]
            )
            conn.execute(
                "insert into public.ticket_timeline (ticket_id, event_type, from_status,"
                " to_status, actor_kind, source, created_at)"
                " values (%s, 'status_changed', 'created', 'sent', 'primary', 'app', %s)",
                [ticket.ticket_id, at(sent)],
            )
            if received:
                conn.execute(
                    "insert into public.ticket_timeline (ticket_id, event_type, from_status,"
                    " to_status, actor_kind, source, created_at) values"
                    " (%s, 'status_changed', 'sent', 'received', 'secondary', 'app', %s)",
                    [ticket.ticket_id, at(received)],
                )
        conn.execute(
            "insert into public.ticket_timeline (ticket_id, event_type, from_status, to_status,"
            " actor_kind, source, created_at) values"
            " (%s, 'status_changed', 'shipped', 'delivered', 'system', 'lifefile', %s)",
            [t1.ticket_id, at("2026-10-07 09:00")],
        )
        thread = conn.execute(
            "select id from public.chat_threads where ticket_id = %s", [t1.ticket_id]
        ).fetchone()[0]
        conn.execute(
            "insert into public.chat_messages (thread_id, sender_id, body, created_at)"
            " values (%s, %s, 'on it', %s), (%s, %s, 'thanks', %s)",
            [
                thread,
                t1.pharmacist,
                at("2026-10-05 13:00"),
                thread,
                t1.patient,
                at("2026-10-05 11:00"),
            ],
        )
    finally:
        conn.execute("set session_replication_role = origin")
    return {
        "pharmacy": pharmacy,
        "owner": t1.pharmacist,
        "t1": t1,
        "other": t2.pharmacy,
        "admin": create_user(conn, "admin"),
        "patient": t1.patient,
    }


def report(conn, user, start="2026-10-01", end="2026-10-18", grain="week") -> list[dict]:
    with as_user(conn, user) as c, c.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "select * from public.ticket_operations_report(%s, %s, %s)", [start, end, grain]
        ).fetchall()


def row_of(rows, provider, period) -> dict:
    found = [r for r in rows if r["provider_id"] == provider and r["period_start"] == period]
    assert len(found) == 1, rows
    return found[0]


def test_flow_counts_and_response_times(conn, history) -> None:
    week = row_of(report(conn, history["admin"]), history["pharmacy"], WEEK)
    assert week["ticket_type"] == "prescription"
    assert (
        week["opened_count"],
        week["accepted_count"],
        week["declined_count"],
        week["completed_count"],
    ) == (3, 2, 0, 1)
    assert week["time_to_accept_p50"] == timedelta(hours=6)  # 2 h and 10 h
    assert week["time_to_accept_p90"] == timedelta(hours=9.2)
    # The pharmacist's first message, 3 h after sending (the patient's earlier one is not it).
    assert week["first_response_p50"] == timedelta(hours=3)


def test_open_backlog_by_age_at_the_end_of_each_period(conn, history) -> None:
    rows = report(conn, history["admin"])
    first = row_of(rows, history["pharmacy"], WEEK)
    # t3 sent Thursday 10:00, not accepted by Monday 00:00: 3.6 days old.
    assert (first["open_backlog_1d"], first["open_backlog_7d"], first["open_backlog_older"]) == (
        0,
        1,
        0,
    )
    second = row_of(rows, history["pharmacy"], date(2026, 10, 12))
    assert (second["opened_count"], second["open_backlog_older"]) == (0, 1)


def test_daily_grain(conn, history) -> None:
    rows = report(conn, history["admin"], "2026-10-05", "2026-10-05", "day")
    day = row_of(rows, history["pharmacy"], WEEK)
    assert (day["opened_count"], day["accepted_count"], day["open_backlog_1d"]) == (1, 1, 0)


def test_active_tickets_are_the_claimed_and_scheduled_per_provider(conn, history) -> None:
    counsellor = create_user(conn, "counselor")
    practice = create_provider(conn, "counselor", owner=counsellor)
    patient = create_user(conn, "patient")
    ticket = conn.execute(
        "insert into public.healthcare_tickets (ticket_type, status, patient_id,"
        " required_provider_kind, created_by, title) values ('counseling', 'open', %s,"
        " 'counselor', %s, 'Stress') returning id",
        [patient, patient],
    ).fetchone()[0]
    with as_user(conn, counsellor) as c:
        c.execute("select public.claim_ticket(%s, %s)", [ticket, practice])
    today = datetime.now(UTC).date()
    rows = report(conn, history["admin"], today.isoformat(), today.isoformat(), "day")
    mine = row_of(rows, practice, today)
    assert (mine["ticket_type"], mine["accepted_count"], mine["active_tickets"]) == (
        "counseling",
        1,
        1,
    )
    # The counsellor sees their own row.
    assert {r["provider_id"] for r in report(conn, counsellor, today, today, "day")} == {practice}


def test_members_see_their_provider_admins_everything(conn, history) -> None:
    assert {r["provider_id"] for r in report(conn, history["owner"])} == {history["pharmacy"]}
    assert {history["pharmacy"], history["other"]} - {
        r["provider_id"] for r in report(conn, history["admin"])
    } == {history["other"]}  # the other pharmacies' tickets were moved away: no rows
    assert report(conn, history["patient"]) == []


def test_anon_may_not_call_it(conn, history) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_anon(conn) as c:
        c.execute("select * from public.ticket_operations_report('2026-10-01', '2026-10-31')")


def test_a_bad_grain_is_refused(conn, history) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue), as_user(conn, history["admin"]) as c:
        c.execute(
            "select * from public.ticket_operations_report('2026-10-01', '2026-10-31', 'hour')"
        )
