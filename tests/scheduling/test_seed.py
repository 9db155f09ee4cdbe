"""The scheduling part of the seed: re-runnable, and its counters are true."""

from __future__ import annotations

import psycopg

from app.migrate import Migrator
from tests.helpers import MIGRATIONS, PROJECT_ROOT, TestDatabase

SUPABASE = PROJECT_ROOT / "supabase"


def test_seed_runs_twice_and_leaves_counters_true(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    migrator = Migrator(
        database.url, MIGRATIONS, seed_file=SUPABASE / "seed.sql", say=lambda _line: None
    )
    migrator.run(seed=True)
    first = conn.execute(
        "select (select count(*) from public.time_slot),"
        " (select count(*) from public.reservation_request),"
        " (select count(*) from public.reservation),"
        " (select count(*) from public.appointment_note)"
    ).fetchone()
    migrator.run(seed=True)
    second = conn.execute(
        "select (select count(*) from public.time_slot),"
        " (select count(*) from public.reservation_request),"
        " (select count(*) from public.reservation),"
        " (select count(*) from public.appointment_note)"
    ).fetchone()
    assert first == second
    assert first is not None
    slots, requests, reservations, notes = first
    # Two weeks of weekday slots for two services, four requests (two approved), two notes.
    assert slots >= 100
    assert (requests, reservations, notes) == (4, 2, 2)
    assert conn.execute(
        "select count(*) from public.time_slot as s where"
        " (s.current_reservations, s.pending_requests) <> ("
        "  (select count(*) from public.reservation as r"
        "   where r.slot_id = s.id and r.status <> 'cancelled')"
        "  + (select count(*) from public.reservation_request as q"
        "     where q.slot_id = s.id and q.status = 'pending'),"
        "  (select count(*) from public.reservation_request as q"
        "   where q.slot_id = s.id and q.status = 'pending'))"
    ).fetchone() == (0,)
    statuses = dict(
        conn.execute("select patient_name, status from public.reservation_request").fetchall()
    )
    assert statuses == {
        "Pat Patient": "approved",
        "Maria Garcia": "pending",
        "John Smith": "approved",
        "Lena Fischer": "rejected",
    }
