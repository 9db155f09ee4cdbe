"""Scheduling's declarative files agree with the migrated database, and the seed re-runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg

from app.localdb import find_bin_dir
from app.migrate import Migrator
from app.sqlfiles import split_statements
from tests.helpers import MIGRATIONS, PROJECT_ROOT, TestDatabase

SUPABASE = PROJECT_ROOT / "supabase"
SCHEDULING_TABLES = (
    "medical_service",
    "availability_rule",
    "time_slot",
    "reservation_request",
    "reservation",
    "appointment_note",
)


def schema_dump(url: str) -> str:
    text = subprocess.run(
        [str(find_bin_dir() / "pg_dump"), "--schema-only", "--no-owner", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # Recent pg_dump releases fence the dump with a random \restrict key.
    return "\n".join(
        line for line in text.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )


def apply(conn: psycopg.Connection, path: Path) -> None:
    with conn.transaction():
        for statement in split_statements(path.read_text(encoding="utf-8")):
            conn.execute(statement.text.encode("utf-8"), prepare=False)


def test_reapplying_scheduling_declarative_files_changes_nothing(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    before = schema_dump(database.url)
    apply(conn, SUPABASE / "functions-sql" / "scheduling.sql")
    for table in SCHEDULING_TABLES:
        apply(conn, SUPABASE / "policies" / f"{table}.sql")
    assert schema_dump(database.url) == before


def test_every_scheduling_table_has_a_policy_file() -> None:
    for table in SCHEDULING_TABLES:
        assert (SUPABASE / "policies" / f"{table}.sql").exists()


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
