"""The migration runner, against real databases: history, locking, refusals, rollbacks."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from app.migrate import MigrationError, Migrator, bootstrap_sql, load_migrations
from app.sqlfiles import split_statements
from tests.helpers import MIGRATIONS, TestDatabase, pg_dump_schema, run_together


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def history(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        "select version, name from supabase_migrations.schema_migrations order by version"
    ).fetchall()


def exists(conn: psycopg.Connection, relation: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", [relation]).fetchone()
    return bool(row and row[0])


def migrator(database: TestDatabase, folder: Path, lines: list[str] | None = None) -> Migrator:
    return Migrator(database.url, folder, say=(lines.append if lines is not None else print))


def test_fresh_apply_records_every_migration_like_the_supabase_cli(
    empty_database: TestDatabase,
) -> None:
    lines: list[str] = []
    applied = migrator(empty_database, MIGRATIONS, lines).run()
    files = load_migrations(MIGRATIONS)
    assert [m.version for m in applied] == [m.version for m in files]
    conn = empty_database.connect()
    rows = conn.execute(
        "select version, name, statements from supabase_migrations.schema_migrations"
        " order by version"
    ).fetchall()
    assert [(v, n) for v, n, _ in rows] == [(m.version, m.name) for m in files]
    for (_, _, statements), migration in zip(rows, files, strict=True):
        assert statements == [s.text for s in migration.statements]
    assert lines[0].startswith("applied Supabase compatibility bootstrap")
    assert all(any(line.startswith(f"applied {m.file_name} (") for line in lines) for m in files)


def test_second_run_applies_nothing(empty_database: TestDatabase) -> None:
    migrator(empty_database, MIGRATIONS).run()
    before = pg_dump_schema(empty_database.url)
    lines: list[str] = []
    assert migrator(empty_database, MIGRATIONS, lines).run() == []
    assert lines == ["database is up to date; nothing to apply"]
    assert pg_dump_schema(empty_database.url) == before


def test_two_runners_started_together_apply_once(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(
        folder,
        "20990101000000_slow.sql",
        "create table public.once (x int);\nselect pg_sleep(1);\n",
    )
    messages: list[str] = []

    def run(_index: int) -> list[str]:
        return [m.version for m in migrator(empty_database, folder, messages).run()]

    results = run_together(2, run)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert sorted(results) == [[], ["20990101000000"]]
    assert any(m.startswith("another migration runner is working") for m in messages)
    assert history(empty_database.connect()) == [("20990101000000", "slow")]


def test_applied_migration_whose_file_changed_is_refused(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    first = write(folder, "20990101000000_first.sql", "create table public.a (x int);\n")
    migrator(empty_database, folder).run()
    first.write_text("create table public.a (x int, y int);\n")
    write(folder, "20990101000001_second.sql", "create table public.b (x int);\n")
    with pytest.raises(
        MigrationError,
        match=r"20990101000000_first\.sql was applied but its "
        r"file has changed",
    ):
        migrator(empty_database, folder).run()
    conn = empty_database.connect()
    assert not exists(conn, "public.b")
    assert history(conn) == [("20990101000000", "first")]


def test_reformatting_an_applied_migration_is_not_a_change(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    first = write(folder, "20990101000000_first.sql", "create table public.a (x int);\n")
    migrator(empty_database, folder).run()
    first.write_text("-- the a table\ncreate table public.a (\n    x int\n)\n")
    assert migrator(empty_database, folder).run() == []


def test_database_recording_an_unknown_version_is_refused(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(folder, "20990101000000_first.sql", "create table public.a (x int);\n")
    migrator(empty_database, folder).run()
    conn = empty_database.connect()
    conn.execute(
        "insert into supabase_migrations.schema_migrations (version, name)"
        " values ('20990101000005', 'from_another_branch')"
    )
    write(folder, "20990101000009_third.sql", "create table public.c (x int);\n")
    with pytest.raises(MigrationError, match=r"lacks: 20990101000005 \(from_another_branch\)"):
        migrator(empty_database, folder).run()
    assert not exists(conn, "public.c")


def test_failing_migration_rolls_back_and_records_nothing(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(folder, "20990101000000_good.sql", "create table public.good (x int);\n")
    write(
        folder,
        "20990101000001_bad.sql",
        "create table public.half (x int);\n\n-- oops\ninsert into public.missing\nvalues (1);\n",
    )
    write(folder, "20990101000002_after.sql", "create table public.after (x int);\n")
    with pytest.raises(MigrationError) as failure:
        migrator(empty_database, folder).run()
    message = str(failure.value)
    assert message.startswith(
        '20990101000001_bad.sql:4: ERROR 42P01: relation "public.missing" does not exist'
    )
    assert "rolled back" in message
    conn = empty_database.connect()
    assert exists(conn, "public.good")
    assert not exists(conn, "public.half")
    assert not exists(conn, "public.after")
    assert history(conn) == [("20990101000000", "good")]


@pytest.mark.parametrize(
    "name",
    [
        "2026_short.sql",
        "20990101000000_Upper.sql",
        "20990101000000-dash.sql",
        "20990101000000_notes.txt",
        "README.md",
    ],
)
def test_a_file_that_is_not_a_migration_is_rejected_before_anything_runs(
    empty_database: TestDatabase, tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "migrations"
    write(folder, "20990101000000_fine.sql", "create table public.fine (x int);\n")
    write(folder, name, "select 1;\n")
    with pytest.raises(MigrationError, match=rf"{name}: not a migration file name"):
        migrator(empty_database, folder).run()
    assert not exists(empty_database.connect(), "auth.users")


def test_pending_migration_older_than_the_newest_applied_is_refused(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(folder, "20990101000005_newer.sql", "create table public.newer (x int);\n")
    migrator(empty_database, folder).run()
    write(folder, "20990101000001_older.sql", "create table public.older (x int);\n")
    with pytest.raises(MigrationError, match=r"20990101000001_older\.sql are older than"):
        migrator(empty_database, folder).run()
    assert not exists(empty_database.connect(), "public.older")


def test_dry_run_lists_what_would_run_and_changes_nothing(
    empty_database: TestDatabase,
) -> None:
    before = pg_dump_schema(empty_database.url)
    lines: list[str] = []
    pending = migrator(empty_database, MIGRATIONS, lines).run(dry_run=True, seed=True)
    assert [m.version for m in pending] == [m.version for m in load_migrations(MIGRATIONS)]
    assert lines[0] == "would apply the Supabase compatibility bootstrap (no auth.users)"
    assert lines[1:-1] == [f"would apply {m.file_name}" for m in pending]
    assert lines[-1].startswith("would apply seed")
    assert pg_dump_schema(empty_database.url) == before


def test_seed_applies_after_migrations_and_can_be_applied_again(
    empty_database: TestDatabase,
) -> None:
    seed = MIGRATIONS.parent / "seed.sql"
    runner = Migrator(empty_database.url, MIGRATIONS, seed, say=lambda _line: None)
    runner.run(seed=True)
    runner.run(seed=True)
    conn = empty_database.connect()
    row = conn.execute(
        "select role from public.profile where email = 'doctor@carehub.test'"
    ).fetchone()
    assert row == ("doctor",)


def test_no_transaction_file_can_build_an_index_concurrently(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(folder, "20990101000000_table.sql", "create table public.big (x int);\n")
    write(
        folder,
        "20990101000001_index.sql",
        "-- carehub: no-transaction\n"
        "create index concurrently if not exists big_x_idx on public.big (x);\n",
    )
    migrator(empty_database, folder).run()
    conn = empty_database.connect()
    assert exists(conn, "public.big_x_idx")
    assert [v for v, _ in history(conn)] == ["20990101000000", "20990101000001"]


def test_bootstrap_is_idempotent(empty_database: TestDatabase) -> None:
    conn = empty_database.connect()
    statements = split_statements(bootstrap_sql())
    for statement in statements:
        conn.execute(statement.text.encode())
    before = pg_dump_schema(empty_database.url)
    for statement in statements:
        conn.execute(statement.text.encode())
    assert pg_dump_schema(empty_database.url) == before


def test_bootstrap_is_skipped_on_a_database_that_has_auth_users(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    conn = empty_database.connect()
    conn.execute("create schema auth")
    conn.execute("create table auth.users (id uuid primary key)")
    folder = tmp_path / "migrations"
    write(folder, "20990101000000_first.sql", "create table public.a (x int);\n")
    lines: list[str] = []
    migrator(empty_database, folder, lines).run()
    assert not any("bootstrap" in line for line in lines)
    assert not exists(conn, "realtime.messages")
    assert history(conn) == [("20990101000000", "first")]


def invalid_indexes(conn: psycopg.Connection) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "select indexrelid::regclass::text from pg_index"
            " where not (indisvalid and indisready) order by 1"
        ).fetchall()
    ]


def test_two_runners_with_a_slow_migration_then_a_concurrent_index_never_deadlock(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    # The waiting runner used to block in pg_advisory_lock, holding a snapshot that the first
    # runner's create index concurrently waits for: one of them died with "deadlock detected",
    # or the build was killed and its INVALID index recorded as applied.
    folder = tmp_path / "migrations"
    write(
        folder,
        "20990101000000_table.sql",
        "create table public.big as select g as x from generate_series(1, 20000) g;\n",
    )
    write(folder, "20990101000001_slow.sql", "select pg_sleep(1.5);\n")
    write(
        folder,
        "20990101000002_index.sql",
        "-- carehub: no-transaction\n"
        "create unique index concurrently if not exists big_x_key on public.big (x);\n"
        "create index concurrently if not exists big_x_desc_idx on public.big (x desc);\n",
    )
    messages: list[str] = []

    def run(_index: int) -> list[str]:
        runner = Migrator(empty_database.url, folder, say=messages.append, lock_timeout="30s")
        return [m.version for m in runner.run()]

    results = run_together(2, run)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert sorted(results) == [[], ["20990101000000", "20990101000001", "20990101000002"]]
    assert any(m.startswith("another migration runner is working") for m in messages)
    conn = empty_database.connect()
    assert [v for v, _ in history(conn)] == ["20990101000000", "20990101000001", "20990101000002"]
    assert invalid_indexes(conn) == []
    assert exists(conn, "public.big_x_key")
    assert exists(conn, "public.big_x_desc_idx")
    assert sum(m.startswith("applied 20990101000002_index.sql") for m in messages) == 1


def test_an_index_left_invalid_by_an_interrupted_build_is_dropped_and_built_again(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(
        folder,
        "20990101000000_table.sql",
        "create table public.big (x int);\ninsert into public.big values (1), (2), (2);\n",
    )
    write(
        folder,
        "20990101000001_index.sql",
        "-- carehub: no-transaction\n"
        "create unique index concurrently if not exists big_x_key on public.big (x);\n",
    )
    # The build fails part-way (here: a duplicate), leaving big_x_key INVALID.
    with pytest.raises(MigrationError, match=r"20990101000001_index\.sql:2: ERROR 23505"):
        migrator(empty_database, folder).run()
    conn = empty_database.connect()
    assert invalid_indexes(conn) == ["big_x_key"]
    assert [v for v, _ in history(conn)] == ["20990101000000"]

    # Once the cause is fixed, the next run says what it does, rebuilds and records the file:
    # `if not exists` alone would have skipped the invalid index and recorded it as applied.
    conn.execute("delete from public.big where ctid = (select max(ctid) from public.big)")
    lines: list[str] = []
    migrator(empty_database, folder, lines).run()
    assert any(
        "index public.big_x_key is INVALID" in line and "building it again" in line
        for line in lines
    )
    assert invalid_indexes(conn) == []
    assert exists(conn, "public.big_x_key")
    assert [v for v, _ in history(conn)] == ["20990101000000", "20990101000001"]


def test_a_no_transaction_file_is_recorded_only_when_its_indexes_are_valid(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(folder, "20990101000000_table.sql", "create table public.big (x int);\n")
    migrator(empty_database, folder).run()
    conn = empty_database.connect()
    # What a build killed in another timing leaves behind (the old runner recorded it anyway).
    conn.execute("create index big_x_idx on public.big (x)")
    conn.execute(
        "update pg_index set indisvalid = false where indexrelid = 'public.big_x_idx'::regclass"
    )
    write(
        folder,
        "20990101000001_index.sql",
        "-- carehub: no-transaction\n"
        "create index concurrently if not exists big_x_idx on public.big (x);\n",
    )
    lines: list[str] = []
    migrator(empty_database, folder, lines).run()
    assert any("index public.big_x_idx is INVALID" in line for line in lines)
    assert invalid_indexes(conn) == []
    assert [v for v, _ in history(conn)] == ["20990101000000", "20990101000001"]


def test_lock_timeout_applies_to_no_transaction_files(
    empty_database: TestDatabase, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    write(folder, "20990101000000_table.sql", "create table public.big (x int);\n")
    migrator(empty_database, folder).run()
    write(
        folder,
        "20990101000001_index.sql",
        "-- carehub: no-transaction\n"
        "create index concurrently if not exists big_x_idx on public.big (x);\n",
    )
    blocker = empty_database.connect(autocommit=False)
    blocker.execute("lock table public.big in access exclusive mode")
    try:
        runner = Migrator(empty_database.url, folder, say=lambda _l: None, lock_timeout="300ms")
        with pytest.raises(MigrationError, match=r"ERROR 55P03: canceling statement due to lock"):
            runner.run()
    finally:
        blocker.rollback()
    conn = empty_database.connect()
    assert [v for v, _ in history(conn)] == ["20990101000000"]
    # The session setting does not outlive the file: the runner can go on with the next one.
    migrator(empty_database, folder).run()
    assert invalid_indexes(conn) == []
    assert [v for v, _ in history(conn)] == ["20990101000000", "20990101000001"]
