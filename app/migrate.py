"""The migration runner behind `carehub db migrate`.

History is kept exactly as the Supabase CLI keeps it (supabase_migrations.schema_migrations with
version, statements, name), so either tool can take over from the other. The runner:
- refuses a folder holding anything but <14 digits>_<snake_name>.sql files;
- holds a session advisory lock while it works, so two runners never apply at once; a runner
  that finds it taken polls for it from an idle session, so it holds no snapshot that the other
  runner's `create index concurrently` would wait for (a blocking pg_advisory_lock would: the
  two then deadlock);
- refuses a database that records a version the folder lacks, an applied migration whose file
  has changed since, and a pending migration older than the newest applied one;
- applies each pending file in its own transaction together with its history row; a
  no-transaction file is recorded only once every index it builds is valid, and an invalid index
  left by an interrupted build is dropped and built again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from app.sqlfiles import Statement, fingerprint, split_statements

FILE_NAME = re.compile(r"^(?P<version>[0-9]{14})_(?P<name>[a-z0-9_]+)\.sql$")

# Key of the session advisory lock every runner takes; any fixed 64-bit number would do.
LOCK_KEY = 0x63617265687562  # "carehub"

# A migration that waits this long for a table lock gives up instead of queueing every other
# query on that table behind it (a production database keeps serving while it migrates).
DEFAULT_LOCK_TIMEOUT = "10s"

NO_TRANSACTION = "-- carehub: no-transaction"

# How often a runner that waits for another one asks for the lock again.
LOCK_POLL_SECONDS = 0.5

# `create [unique] index concurrently [if not exists] name on [only] table`: the indexes a
# no-transaction file builds (an index always lives in its table's schema).
_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z_0-9$]*)'
CONCURRENT_INDEX = re.compile(
    rf"^\s*create\s+(?:unique\s+)?index\s+concurrently\s+(?:if\s+not\s+exists\s+)?"
    rf"(?P<name>{_IDENT})\s+on\s+(?:only\s+)?(?P<table>{_IDENT}(?:\s*\.\s*{_IDENT})?)",
    re.IGNORECASE,
)


class MigrationError(RuntimeError):
    """Something stops the run; the message names the file and says what to do."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path
    text: str
    statements: list[Statement] = field(repr=False)

    @property
    def file_name(self) -> str:
        return self.path.name

    @property
    def transactional(self) -> bool:
        """False for files that start with ``-- carehub: no-transaction``.

        Such a file may hold only statements that cannot run in a transaction block
        (``create index concurrently``), each of them re-runnable (``if not exists``): they are
        run one by one and the history row is written after the last.
        """
        return not self.text.lstrip().startswith(NO_TRANSACTION)


def load_migrations(folder: Path) -> list[Migration]:
    """Every migration in ``folder``, in version order; any other file is an error."""
    if not folder.is_dir():
        raise MigrationError(f"migrations folder {folder} does not exist")
    migrations: list[Migration] = []
    seen: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        match = FILE_NAME.match(path.name)
        if not match or not path.is_file():
            raise MigrationError(
                f"{path}: not a migration file name; expected <14-digit UTC timestamp>_"
                f"<lower_snake_name>.sql (e.g. 20261121093000_add_tickets.sql). "
                f"Rename it or move it out of {folder}."
            )
        version = match["version"]
        if version in seen:
            raise MigrationError(
                f"{path.name} and {seen[version]} share version {version}; give one of them "
                f"a later timestamp"
            )
        seen[version] = path.name
        text = path.read_text(encoding="utf-8")
        try:
            statements = split_statements(text)
        except ValueError as exc:
            raise MigrationError(f"{path.name}: {exc}") from exc
        migrations.append(Migration(version, match["name"], path, text, statements))
    return migrations


def bootstrap_sql() -> str:
    return (Path(__file__).parent / "sql" / "supabase_bootstrap.sql").read_text(encoding="utf-8")


@dataclass
class Migrator:
    """Applies ``folder``'s migrations to the database at ``url``; reports through ``say``."""

    url: str
    folder: Path
    seed_file: Path | None = None
    say: Callable[[str], None] = print
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT

    def run(self, *, dry_run: bool = False, seed: bool = False) -> list[Migration]:
        """Apply (or, with ``dry_run``, list) what is pending. Returns the pending migrations."""
        migrations = load_migrations(self.folder)
        with psycopg.connect(self.url, autocommit=True, application_name="carehub migrate") as conn:
            if not dry_run:
                self._lock(conn)
            needs_bootstrap = not _exists(conn, "auth.users")
            older_bootstrap = not needs_bootstrap and _older_bootstrap(conn)
            if needs_bootstrap:
                if dry_run:
                    self.say("would apply the Supabase compatibility bootstrap (no auth.users)")
                else:
                    self._apply_bootstrap(conn)
            elif older_bootstrap:
                if dry_run:
                    self.say(
                        f"would update the Supabase compatibility bootstrap ({older_bootstrap})"
                    )
                else:
                    self._apply_bootstrap(conn)
            elif not dry_run:
                self._ensure_history_table(conn)
            pending = self._check(conn, migrations)
            for migration in pending:
                if dry_run:
                    self.say(f"would apply {migration.file_name}")
                else:
                    self._apply(conn, migration)
            if not pending:
                self.say("database is up to date; nothing to apply")
            if seed:
                if dry_run:
                    self.say(f"would apply seed {self.seed_file}")
                else:
                    self._apply_seed(conn)
        return pending

    # -- checks ------------------------------------------------------------------------------

    def _check(self, conn: psycopg.Connection, migrations: list[Migration]) -> list[Migration]:
        applied = _applied(conn)
        by_version = {m.version: m for m in migrations}
        unknown = sorted(set(applied) - set(by_version))
        if unknown:
            raise MigrationError(
                "the database records migration(s) this folder lacks: "
                + ", ".join(f"{v} ({applied[v][0] or 'unnamed'})" for v in unknown)
                + f". Check out the branch that has them, or restore them into {self.folder}; "
                "nothing was changed."
            )
        for version, (_, statements) in applied.items():
            migration = by_version[version]
            if statements is not None and fingerprint(";".join(statements)) != fingerprint(
                migration.text
            ):
                raise MigrationError(
                    f"{migration.file_name} was applied but its file has changed since. Applied "
                    "migrations must never be edited: restore the file (git checkout) and put "
                    "the change in a new migration; nothing was changed."
                )
        pending = [m for m in migrations if m.version not in applied]
        newest = max(applied, default="")
        late = [m.file_name for m in pending if m.version < newest]
        if late:
            raise MigrationError(
                f"pending migration(s) {', '.join(late)} are older than the newest applied "
                f"migration {newest}; give them a timestamp after {newest} so every database "
                "applies migrations in the same order. Nothing was changed."
            )
        return pending

    # -- applying ----------------------------------------------------------------------------

    def _lock(self, conn: psycopg.Connection) -> None:
        # Never `select pg_advisory_lock(...)`: a statement blocked on it holds a snapshot, and
        # `create index concurrently` in the runner we wait for waits for every snapshot
        # (deadlock detected). Each try is one short autocommit statement; between tries this
        # session is idle and holds nothing.
        said = False
        while True:
            got = conn.execute("select pg_try_advisory_lock(%s)", [LOCK_KEY]).fetchone()
            if got and got[0]:
                return
            if not said:
                holder = conn.execute(
                    "select pid from pg_locks where locktype = 'advisory' and granted"
                    " and (classid::bigint << 32 | objid::bigint) = %s"
                    " and database = (select oid from pg_database"
                    " where datname = current_database())",
                    [LOCK_KEY],
                ).fetchone()
                self.say(
                    "another migration runner is working on this database"
                    + (f" (backend pid {holder[0]})" if holder else "")
                    + "; waiting for it to finish"
                )
                said = True
            time.sleep(LOCK_POLL_SECONDS)

    def _apply_bootstrap(self, conn: psycopg.Connection) -> None:
        started = time.perf_counter()
        script = bootstrap_sql()
        with conn.transaction():
            _execute_all(conn, split_statements(script), "supabase_bootstrap.sql")
        self.say(f"applied Supabase compatibility bootstrap ({_ms(started)})")

    def _ensure_history_table(self, conn: psycopg.Connection) -> None:
        # What the Supabase CLI runs before it pushes, so both tools find the same table.
        with conn.transaction():
            conn.execute("create schema if not exists supabase_migrations")
            conn.execute(
                "create table if not exists supabase_migrations.schema_migrations"
                " (version text not null primary key)"
            )
            conn.execute(
                "alter table supabase_migrations.schema_migrations"
                " add column if not exists statements text[],"
                " add column if not exists name text"
            )

    def _apply(self, conn: psycopg.Connection, migration: Migration) -> None:
        started = time.perf_counter()
        record = (
            "insert into supabase_migrations.schema_migrations (version, statements, name)"
            " values (%s, %s, %s)"
        )
        values = [migration.version, [s.text for s in migration.statements], migration.name]
        if migration.transactional:
            with conn.transaction():
                conn.execute(
                    sql.SQL("set local lock_timeout = {}").format(sql.Literal(self.lock_timeout))
                )
                _execute_all(conn, migration.statements, migration.file_name)
                conn.execute(record, values)
        else:
            self._apply_without_transaction(conn, migration)
            conn.execute(record, values)
        self.say(f"applied {migration.file_name} ({_ms(started)})")

    def _apply_without_transaction(self, conn: psycopg.Connection, migration: Migration) -> None:
        """Run a no-transaction file statement by statement under the same lock_timeout.

        An index that an interrupted `create index concurrently` left INVALID would be skipped
        by the statement's `if not exists`: it is dropped first and built again. The file is
        recorded only when every index it builds is valid.
        """
        conn.execute(sql.SQL("set lock_timeout = {}").format(sql.Literal(self.lock_timeout)))
        try:
            for statement in migration.statements:
                index = _concurrent_index(conn, statement)
                if index is not None and _index_is_invalid(conn, index):
                    self.say(
                        f"{migration.file_name}: index {index} is INVALID (an interrupted "
                        "concurrent build left it); dropping it and building it again"
                    )
                    _execute_all(
                        conn,
                        [Statement(f"drop index concurrently if exists {index}", statement.line)],
                        migration.file_name,
                        transactional=False,
                    )
                _execute_all(conn, [statement], migration.file_name, transactional=False)
            not_valid = [
                index
                for statement in migration.statements
                if (index := _concurrent_index(conn, statement)) is not None
                and not _index_is_valid(conn, index)
            ]
        finally:
            conn.execute("reset lock_timeout")
        if not_valid:
            raise MigrationError(
                f"{migration.file_name}: index(es) {', '.join(not_valid)} are missing or INVALID "
                "after the file ran, so it is not recorded. Run migrate again: an invalid index "
                "is dropped and built again."
            )

    def _apply_seed(self, conn: psycopg.Connection) -> None:
        if self.seed_file is None or not self.seed_file.exists():
            raise MigrationError(f"seed file {self.seed_file} does not exist")
        started = time.perf_counter()
        text = self.seed_file.read_text(encoding="utf-8")
        with conn.transaction():
            _execute_all(conn, split_statements(text), self.seed_file.name)
        self.say(f"applied seed {self.seed_file.name} ({_ms(started)})")


def _execute_all(
    conn: psycopg.Connection,
    statements: list[Statement],
    file_name: str,
    *,
    transactional: bool = True,
) -> None:
    for statement in statements:
        try:
            conn.execute(statement.text.encode("utf-8"), prepare=False)
        except psycopg.Error as exc:
            message = _describe_failure(exc, statement, file_name)
            if transactional:
                message += "\nThe file was rolled back; nothing of it was recorded or kept."
            else:
                message += (
                    "\nThis no-transaction file stopped part-way and is not recorded; its "
                    "statements are re-runnable, so fix the cause and run migrate again (an "
                    "index it left INVALID is then dropped and built again)."
                )
            raise MigrationError(message) from exc


def _describe_failure(exc: psycopg.Error, statement: Statement, file_name: str) -> str:
    diag = exc.diag
    line = statement.line
    if diag.statement_position:
        line += statement.text.count("\n", 0, int(diag.statement_position) - 1)
    parts = [
        f"{file_name}:{line}: {diag.severity or 'ERROR'} {diag.sqlstate or ''}: "
        f"{diag.message_primary or exc}".rstrip()
    ]
    for label, value in (
        ("detail", diag.message_detail),
        ("hint", diag.message_hint),
        ("context", diag.context),
    ):
        if value:
            parts.append(f"  {label}: {value}")
    return "\n".join(parts)


def _concurrent_index(conn: psycopg.Connection, statement: Statement) -> str | None:
    """The schema-qualified name of the index ``statement`` builds concurrently, if it does."""
    match = CONCURRENT_INDEX.match(statement.text)
    if not match:
        return None
    row = conn.execute(
        "select quote_ident(n.nspname) from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace where c.oid = to_regclass(%s)",
        [match["table"]],
    ).fetchone()
    if row is None:  # the table does not exist (yet): the statement itself will say so
        return None
    return f"{row[0]}.{match['name']}"


def _index_state(conn: psycopg.Connection, index: str) -> bool | None:
    row = conn.execute(
        "select i.indisvalid and i.indisready from pg_index i where i.indexrelid = to_regclass(%s)",
        [index],
    ).fetchone()
    return None if row is None else bool(row[0])


def _index_is_invalid(conn: psycopg.Connection, index: str) -> bool:
    return _index_state(conn, index) is False


def _index_is_valid(conn: psycopg.Connection, index: str) -> bool:
    return _index_state(conn, index) is True


BOOTSTRAP_VERSION = re.compile(r"carehub Supabase compatibility bootstrap, version (\d+)")


def _older_bootstrap(conn: psycopg.Connection) -> str | None:
    """Why the database, which has auth.users, needs the bootstrap again, or None: an older
    version of it made this database. A real Supabase project never qualifies: it has no version
    mark, and GoTrue's and Storage's own migration tables, which the bootstrap never creates."""
    wanted = BOOTSTRAP_VERSION.search(bootstrap_sql())
    assert wanted is not None, "supabase_bootstrap.sql lost its version comment"
    row = conn.execute(
        "select obj_description(to_regnamespace('auth'), 'pg_namespace'),"
        " to_regclass('realtime.messages') is not null,"
        " to_regclass('auth.schema_migrations') is not null"
        " or to_regclass('storage.migrations') is not null"
    ).fetchone()
    assert row is not None
    mark, has_realtime, platform_tables = row
    found = BOOTSTRAP_VERSION.search(mark or "")
    if found:
        have = int(found[1])
    elif has_realtime and not platform_tables:
        have = 1  # version 1 left no mark; its realtime.messages without the platform's tables
    else:
        return None
    if have >= int(wanted[1]):
        return None
    return f"version {have} to {wanted[1]}"


def _exists(conn: psycopg.Connection, relation: str) -> bool:
    row = conn.execute("select to_regclass(%s) is not null", [relation]).fetchone()
    return bool(row and row[0])


def _applied(conn: psycopg.Connection) -> dict[str, tuple[str | None, list[str] | None]]:
    if not _exists(conn, "supabase_migrations.schema_migrations"):
        return {}
    has_statements = conn.execute(
        "select count(*) = 2 from information_schema.columns"
        " where table_schema = 'supabase_migrations' and table_name = 'schema_migrations'"
        " and column_name in ('statements', 'name')"
    ).fetchone()
    if not (has_statements and has_statements[0]):
        rows = conn.execute(
            "select version, null, null from supabase_migrations.schema_migrations"
        ).fetchall()
    else:
        rows = conn.execute(
            "select version, name, statements from supabase_migrations.schema_migrations"
        ).fetchall()
    return {version: (name, statements) for version, name, statements in rows}


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.0f} ms"
