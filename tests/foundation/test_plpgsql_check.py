"""Static check of every PL/pgSQL function with plpgsql_check (what `supabase db lint` runs).

PL/pgSQL is only parsed when a function is created: a misspelt column, a wrong cast or a dead
variable stays hidden until the line runs. plpgsql_check plans every statement of every
function (trigger functions against each table they are attached to) and reports errors and
warnings, the extra and performance warnings included.
"""

from __future__ import annotations

import os

import psycopg
import pytest


def install_hint(major: int) -> str:
    return (
        f"the plpgsql_check extension is not installed on this PostgreSQL {major} server:"
        f" install the package postgresql-{major}-plpgsql-check (Debian/Ubuntu: apt-get install"
        f" postgresql-{major}-plpgsql-check; .ci/run does it where apt-get exists)"
    )


# Each PL/pgSQL function, once per table it is a trigger on (with its transition tables), or
# once with no table when it is not a trigger function.
TARGETS = """
with target as (
    select p.oid as function_id, coalesce(t.tgrelid, 0) as table_id,
           t.tgoldtable as old_table, t.tgnewtable as new_table,
           p.prorettype = 'trigger'::regtype as is_trigger_function
    from pg_proc p
    join pg_language l on l.oid = p.prolang
    join pg_namespace n on n.oid = p.pronamespace
    left join pg_trigger t on t.tgfoid = p.oid and not t.tgisinternal
    where l.lanname = 'plpgsql'
      and n.nspname not in ('pg_catalog', 'information_schema')
      and not exists (select from pg_depend e where e.objid = p.oid and e.deptype = 'e')
)
"""

# A trigger function can only be checked against a table.
UNATTACHED_TRIGGER_FUNCTIONS = (
    TARGETS + "select function_id::regprocedure::text from target"
    " where is_trigger_function and table_id = 0 order by 1"
)

CHECK_EVERY_FUNCTION = (
    TARGETS
    + """
select distinct
    target.function_id::regprocedure::text,
    nullif(target.table_id, 0)::regclass::text,
    finding.lineno, finding.level, finding.sqlstate, finding.message, finding.detail, finding.hint
from target
cross join lateral extensions.plpgsql_check_function_tb(
    target.function_id,
    target.table_id,
    fatal_errors => false,
    other_warnings => true,
    performance_warnings => true,
    extra_warnings => true,
    oldtable => target.old_table,
    newtable => target.new_table
) as finding
where not (target.is_trigger_function and target.table_id = 0)
order by 1, 2, 3
"""
)


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def test_no_plpgsql_function_has_a_plpgsql_check_finding(conn: psycopg.Connection) -> None:
    row = conn.execute(
        "select exists (select from pg_available_extensions where name = 'plpgsql_check'),"
        " current_setting('server_version_num')::int / 10000"
    ).fetchone()
    assert row is not None
    available, major = row
    if not available:
        if running_in_ci():
            pytest.fail(f"CI must run this check, but {install_hint(major)}")
        pytest.skip(install_hint(major))
    conn.execute("create extension if not exists plpgsql_check with schema extensions")

    offenders = [
        f"{function}: a trigger function on no table cannot be checked (drop it or attach it)"
        for (function,) in conn.execute(UNATTACHED_TRIGGER_FUNCTIONS)
    ]
    for function, table, line, level, sqlstate, message, detail, hint in conn.execute(
        CHECK_EVERY_FUNCTION
    ):
        where = f"{function} on {table}" if table else function
        explained = " ".join(f"({part})" for part in (detail, hint) if part)
        offenders.append(
            f"{where}, line {line}: {level} {sqlstate}: {message} {explained}".rstrip()
        )
    row = conn.execute(
        "select count(*) from pg_proc p join pg_language l on l.oid = p.prolang"
        " where l.lanname = 'plpgsql'"
    ).fetchone()
    assert row is not None
    assert row[0] > 0, "no PL/pgSQL function found: is the schema migrated?"
    assert not offenders, f"plpgsql_check: {len(offenders)} finding(s)\n  " + "\n  ".join(offenders)
