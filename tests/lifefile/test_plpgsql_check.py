"""plpgsql_check (what `supabase db lint` runs) finds nothing in the Lifefile, inbox and
prescription-order-id functions, with its extra and performance warnings on."""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.helpers import PROJECT_ROOT

FILES = ["lifefile.sql", "prescription_order_ids.sql", "webhook_rate_limits.sql"]
_DEFINITION = re.compile(r"create or replace function (private\.[a-z_]+)\(", re.IGNORECASE)


def declared_functions() -> list[str]:
    names: list[str] = []
    for file_name in FILES:
        text = (PROJECT_ROOT / "supabase" / "functions-sql" / file_name).read_text()
        names += _DEFINITION.findall(text)
    return names


def test_every_plpgsql_function_of_these_files_is_clean(conn: psycopg.Connection) -> None:
    try:
        conn.execute("create extension if not exists plpgsql_check")
    except psycopg.Error as exc:  # pragma: no cover - CI installs it
        pytest.fail(
            f"plpgsql_check is not installed: apt-get install postgresql-15-plpgsql-check ({exc})"
        )
    functions = conn.execute(
        "select p.oid, p.oid::regprocedure::text,"
        " (select t.tgrelid from pg_trigger as t where t.tgfoid = p.oid limit 1)"
        " from pg_proc as p join pg_language as l on l.oid = p.prolang"
        " where l.lanname = 'plpgsql' and p.oid::regproc::text = any(%s)",
        [declared_functions()],
    ).fetchall()
    assert len(functions) >= 15
    findings = []
    for oid, name, relid in functions:
        rows = conn.execute(
            "select level, message, lineno, statement from plpgsql_check_function_tb("
            " %s::regprocedure, coalesce(%s::regclass, 0), extra_warnings => true,"
            " performance_warnings => true)",
            [oid, relid],
        ).fetchall()
        findings += [(name, *row) for row in rows]
    assert findings == []
