"""The ticket migrations on a database that already holds the legacy chat and prescription
tables with rows (as the live product does), and agreement between the migrations and the
declarative files of the ticket core."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from app.migrate import Migrator
from tests.helpers import MIGRATIONS, PROJECT_ROOT, TestDatabase, as_user, create_provider
from tests.helpers import create_user as sign_up

BASELINE = "20261121120000_legacy_chat_baseline.sql"
TICKET_FILES = sorted(
    [
        *(PROJECT_ROOT / "supabase" / "functions-sql").glob("tickets_*.sql"),
        PROJECT_ROOT / "supabase" / "functions-sql" / "prescriptions.sql",
    ]
) + sorted(
    PROJECT_ROOT / "supabase" / "policies" / f"{table}.sql"
    for table in (
        "ticket_types",
        "ticket_statuses",
        "ticket_status_transitions",
        "ticket_openers",
        "ticket_field_writers",
        "healthcare_tickets",
        "healthcare_tickets_origin",
        "ticket_timeline",
        "chat_threads",
        "chat_thread_members",
        "chat_messages",
        "prescriptions",
        "prescription_items",
        "notifications",
        "realtime_messages",
    )
)


def migrate_until(database: TestDatabase, last_before: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.name < last_before:
            shutil.copy(path, folder / path.name)
    Migrator(database.url, folder, say=lambda _line: None).run()


def test_ticket_migrations_keep_every_legacy_row_and_query_working(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    migrate_until(empty_database, BASELINE, tmp_path)
    conn = empty_database.connect()
    # The live database: the legacy tables exist (outside the migration history) with rows.
    conn.execute((MIGRATIONS / BASELINE).read_text())
    doctor = sign_up(conn, "doctor")
    pharmacist = sign_up(conn, "pharmacist")
    patient = sign_up(conn, "patient")
    pharmacy = create_provider(conn, "pharmacy", owner=pharmacist)
    appointment = uuid.uuid4()
    thread = conn.execute(
        "insert into public.chat_threads (order_id, order_type, title, metadata, created_by)"
        " values (%s, 'prescription', 'Legacy', %s, %s) returning id",
        [appointment, Jsonb({"target_id": str(pharmacy)}), doctor],
    ).fetchone()[0]  # type: ignore[index]
    for member, role in ((doctor, "doctor"), (pharmacist, "pharmacy"), (patient, "patient")):
        conn.execute(
            "insert into public.chat_thread_members (thread_id, profile_id, role)"
            " values (%s, %s, %s)",
            [thread, member, role],
        )
    conn.execute(
        "insert into public.chat_messages (thread_id, sender_id, body)"
        " values (%s, %s, 'legacy hello')",
        [thread, doctor],
    )
    rx = conn.execute(
        "insert into public.prescriptions (doctor_id, pharmacy_id, patient_id, appointment_id,"
        ' medications) values (%s, %s, %s, %s, \'[{"name": "Ibuprofen"}]\') returning id',
        [doctor, pharmacy, patient, appointment],
    ).fetchone()[0]  # type: ignore[index]
    before = {
        table: conn.execute(f"select count(*) from public.{table}").fetchone()
        for table in ("chat_threads", "chat_thread_members", "chat_messages", "prescriptions")
    }

    applied = Migrator(empty_database.url, MIGRATIONS, say=lambda _line: None).run()
    assert BASELINE in [m.file_name for m in applied]  # recorded, and a no-op here

    for table, count in before.items():
        assert conn.execute(f"select count(*) from public.{table}").fetchone() == count
    legacy = conn.execute(
        "select th.ticket_id, m.kind, m.metadata from public.chat_threads as th"
        " join public.chat_messages as m on m.thread_id = th.id where th.id = %s",
        [thread],
    ).fetchone()
    assert legacy == (None, "text", {})
    # The legacy queries, through the API as the legacy product runs them.
    with as_user(conn, pharmacist) as c:
        found = c.execute(
            "select id from public.chat_threads where order_id = %s"
            " and metadata ->> 'target_id' = %s",
            [appointment, str(pharmacy)],
        ).fetchall()
        assert found == [(thread,)]
        bodies = c.execute(
            "select body from public.chat_messages where thread_id = %s order by created_at",
            [thread],
        ).fetchall()
        assert bodies == [("legacy hello",)]
        c.execute(
            "insert into public.chat_messages (thread_id, sender_id, body)"
            " values (%s, %s, 'legacy reply')",
            [thread, pharmacist],
        )
    with as_user(conn, doctor) as c:
        assert c.execute(
            "select id from public.prescriptions where doctor_id = %s", [doctor]
        ).fetchall() == [(rx,)]
        c.execute("update public.prescriptions set notes = 'take with food' where id = %s", [rx])
        new_thread = c.execute(
            "insert into public.chat_threads (order_id, order_type, title, created_by)"
            " values (%s, 'prescription', 'Old flow', %s) returning id",
            [appointment, doctor],
        ).fetchone()
        assert new_thread is not None
        c.execute(
            "insert into public.chat_thread_members (thread_id, profile_id, role)"
            " values (%s, %s, 'doctor'), (%s, %s, 'patient')",
            [new_thread[0], doctor, new_thread[0], patient],
        )
    with as_user(conn, patient) as c:
        threads = c.execute("select count(*) from public.chat_threads").fetchone()
        assert threads == (2,)


def schema_dump(url: str) -> str:
    result = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", "--dbname", url],
        check=True,
        capture_output=True,
        text=True,
    )
    # pg_dump 15.14+ wraps the dump in \restrict <random key> ... \unrestrict <key>.
    return "\n".join(
        line
        for line in result.stdout.splitlines()
        if not line.startswith(("\\restrict", "\\unrestrict"))
    )


def test_ticket_declarative_files_match_the_migrations(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    before = schema_dump(database.url)
    for path in TICKET_FILES:
        conn.execute(path.read_text())
    assert schema_dump(database.url) == before


def test_private_functions_are_not_executable_by_public(conn: psycopg.Connection) -> None:
    """Functions in private are granted role by role; PUBLIC (hence anon) never holds them."""
    open_to_public = conn.execute(
        "select p.oid::regprocedure::text from pg_proc as p"
        " join pg_namespace as n on n.oid = p.pronamespace"
        " where n.nspname = 'private'"
        " and exists (select from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)))"
        "   as a where a.grantee = 0 and a.privilege_type = 'EXECUTE')"
    ).fetchall()
    assert open_to_public == []
