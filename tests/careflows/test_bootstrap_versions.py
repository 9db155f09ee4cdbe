"""The compatibility bootstrap is versioned: `carehub db migrate` on a database an older
bootstrap made adds what that version lacked (the storage schema, realtime.send); a database
with Supabase's own platform tables is never touched."""

from __future__ import annotations

from pathlib import Path

import psycopg

from app.migrate import Migrator, bootstrap_sql
from app.sqlfiles import split_statements
from tests.helpers import TestDatabase


def apply_bootstrap(conn: psycopg.Connection) -> None:
    for statement in split_statements(bootstrap_sql()):
        conn.execute(statement.text.encode())


def as_version_one_left_it(conn: psycopg.Connection) -> None:
    """What the first bootstrap made: no storage schema, no realtime.send, no version mark."""
    conn.execute("drop schema storage cascade")
    conn.execute("drop function realtime.send(jsonb, text, text, boolean)")
    conn.execute(
        "drop function realtime.broadcast_changes(text, text, text, text, text, record, record,"
        " text)"
    )
    conn.execute("comment on schema auth is null")


def run(database: TestDatabase, tmp_path: Path, *, dry_run: bool = False) -> list[str]:
    folder = tmp_path / "migrations"
    folder.mkdir(exist_ok=True)
    (folder / "20990101000000_first.sql").write_text("create table public.a (x int);\n")
    lines: list[str] = []
    Migrator(database.url, folder, say=lines.append).run(dry_run=dry_run)
    return lines


def present(conn: psycopg.Connection) -> tuple[bool, bool]:
    row = conn.execute(
        "select to_regclass('storage.objects') is not null,"
        " to_regprocedure('realtime.send(jsonb, text, text, boolean)') is not null"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_a_later_migrate_adds_what_an_older_bootstrap_lacked(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    conn = empty_database.connect()
    apply_bootstrap(conn)
    as_version_one_left_it(conn)
    assert present(conn) == (False, False)
    assert run(empty_database, tmp_path, dry_run=True)[0] == (
        "would update the Supabase compatibility bootstrap (version 1 to 2)"
    )
    assert present(conn) == (False, False)
    lines = run(empty_database, tmp_path)
    assert lines[0].startswith("applied Supabase compatibility bootstrap")
    assert present(conn) == (True, True)
    # Up to date now: the next run leaves the bootstrap alone.
    assert not any("bootstrap" in line for line in run(empty_database, tmp_path))


def test_a_current_bootstrap_is_not_applied_again(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    assert run(empty_database, tmp_path)[0].startswith("applied Supabase compatibility bootstrap")
    assert not any("bootstrap" in line for line in run(empty_database, tmp_path))


def test_a_supabase_project_is_never_bootstrapped(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    """A real project has GoTrue's auth.schema_migrations (and Storage's storage.migrations)
    beside auth.users and realtime.messages, and no version mark of ours."""
    conn = empty_database.connect()
    apply_bootstrap(conn)
    as_version_one_left_it(conn)
    conn.execute("create table auth.schema_migrations (version varchar(255) primary key)")
    lines = run(empty_database, tmp_path)
    assert not any("bootstrap" in line for line in lines)
    assert present(conn) == (False, False)
