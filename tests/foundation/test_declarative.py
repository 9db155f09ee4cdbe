"""supabase/functions-sql and supabase/policies agree with what the migrations build."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from app.sqlfiles import split_statements
from tests.helpers import PROJECT_ROOT, TestDatabase, pg_dump_schema

FUNCTIONS = PROJECT_ROOT / "supabase" / "functions-sql"
POLICIES = PROJECT_ROOT / "supabase" / "policies"


def declarative_files() -> list[Path]:
    return sorted(FUNCTIONS.glob("*.sql")) + sorted(POLICIES.glob("*.sql"))


def declarative_text() -> str:
    return "\n".join(path.read_text() for path in declarative_files()).lower()


def schema_with_grants_sorted(url: str) -> list[str]:
    """The schema dump, each run of GRANT/REVOKE lines sorted: revoking and re-granting the
    same privileges reorders an object's ACL entries without changing what they allow."""
    lines: list[str] = []
    grants: list[str] = []
    for line in pg_dump_schema(url).splitlines():
        if line.startswith(("GRANT ", "REVOKE ")):
            grants.append(line)
            continue
        lines.extend(sorted(grants))
        grants = []
        lines.append(line)
    return lines + sorted(grants)


def test_reapplying_every_declarative_file_changes_nothing(database: TestDatabase) -> None:
    before = schema_with_grants_sorted(database.url)
    conn = database.connect()
    for path in declarative_files():
        with conn.transaction():
            for statement in split_statements(path.read_text()):
                conn.execute(statement.text.encode())
    assert schema_with_grants_sorted(database.url) == before


def test_every_function_is_declared(conn: psycopg.Connection) -> None:
    text = declarative_text()
    rows = conn.execute(
        "select n.nspname, p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname in ('public', 'private')"
        " and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')"
    ).fetchall()
    missing = [
        f"{schema}.{name}"
        for schema, name in rows
        if not re.search(rf"create or replace function {schema}\.{name}\(", text)
    ]
    assert missing == []


def test_every_policy_is_declared(conn: psycopg.Connection) -> None:
    text = declarative_text()
    rows = conn.execute(
        "select schemaname, tablename, policyname from pg_policies"
        " where schemaname in ('public', 'private', 'realtime')"
    ).fetchall()
    missing = [
        f"{table}: {name}"
        for schema, table, name in rows
        if f'create policy "{name.lower()}"\non {schema}.{table}' not in text
    ]
    assert missing == []


def test_every_trigger_is_declared(conn: psycopg.Connection) -> None:
    text = declarative_text()
    rows = conn.execute(
        "select n.nspname, c.relname, t.tgname from pg_trigger t"
        " join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace"
        " where not t.tgisinternal and n.nspname in ('public', 'private', 'auth', 'realtime')"
    ).fetchall()
    missing = [
        f"{schema}.{table}: {name}"
        for schema, table, name in rows
        if not re.search(
            rf"create (constraint )?trigger {name}\s.*?\son {schema}\.{table}\s", text, re.DOTALL
        )
    ]
    assert missing == []
