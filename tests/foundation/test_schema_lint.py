"""Security and performance lints over the fully migrated schema."""

from __future__ import annotations

import re

import psycopg

# Security-definer functions in public that anon may execute, each with the reason.
ANON_EXECUTABLE: dict[str, str] = {
    "request_reservation": "patients without an account (WhatsApp, web) book through it; it"
    " validates every input and writes only a pending request or its reservation",
}

# Tables anon may read: the public booking catalogue.
ANON_READABLE = {"medical_service", "time_slot"}

OUR_SCHEMAS = ("public", "private")


def test_every_public_table_has_row_level_security(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity"
    ).fetchall()
    assert rows == []


def test_every_function_has_a_fixed_empty_search_path(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select p.oid::regprocedure::text from pg_proc p"
        " join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = any(%s)"
        " and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')"
        " and not coalesce('search_path=\"\"' = any(p.proconfig), false)",
        [list(OUR_SCHEMAS)],
    ).fetchall()
    assert rows == []


def test_no_security_definer_function_in_public_is_executable_by_anon(
    conn: psycopg.Connection,
) -> None:
    rows = conn.execute(
        "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'public' and p.prosecdef"
        " and has_function_privilege('anon', p.oid, 'execute')"
    ).fetchall()
    assert {name for (name,) in rows} <= set(ANON_EXECUTABLE)


def test_anon_can_read_only_the_booking_catalogue(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind in ('r', 'p', 'v')"
        " and has_table_privilege('anon', c.oid, 'select')"
    ).fetchall()
    assert {name for (name,) in rows} <= ANON_READABLE


def test_anon_can_write_no_table(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select c.relname, p.privilege from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        " cross join unnest(array['insert', 'update', 'delete', 'truncate']) as p(privilege)"
        " where n.nspname = 'public' and c.relkind in ('r', 'p')"
        " and has_table_privilege('anon', c.oid, p.privilege)"
    ).fetchall()
    assert rows == []


def test_every_foreign_key_has_a_covering_index(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        """
        select c.conrelid::regclass::text, c.conname
        from pg_constraint c
        join pg_namespace n on n.oid = c.connamespace
        where c.contype = 'f' and n.nspname = any(%s)
          and not exists (
              select from pg_index i
              where i.indrelid = c.conrelid
                and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
                and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey
          )
        """,
        [list(OUR_SCHEMAS)],
    ).fetchall()
    assert rows == []


def test_policies_call_auth_uid_once_per_statement(conn: psycopg.Connection) -> None:
    offenders = []
    for name, table, expression in conn.execute(
        "select policyname, tablename, concat_ws(' ', qual, with_check) from pg_policies"
        " where schemaname = any(%s)",
        [[*OUR_SCHEMAS, "realtime"]],
    ):
        bare = len(re.findall(r"auth\.uid\(\)", expression))
        wrapped = len(re.findall(r"SELECT auth\.uid\(\) AS uid", expression))
        if bare != wrapped:
            offenders.append(f"{table}: {name}")
    assert offenders == []


def test_policies_name_the_roles_they_apply_to(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "select tablename, policyname from pg_policies"
        " where schemaname = any(%s) and roles = '{public}'",
        [[*OUR_SCHEMAS, "realtime"]],
    ).fetchall()
    assert rows == []
