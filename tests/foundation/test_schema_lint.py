"""Security and performance lints over the fully migrated schema.

Each rule of Supabase's database linter (the `splinter` lints behind the dashboard's Security and
Performance Advisors) that applies to a plain database has its own test here, written from the
lint's documented rule and named after it (`lint 0028 anon_security_definer_function_executable`);
where a house rule is stricter than the lint, the test checks the house rule and says which lint
it covers. Every test names the offending objects. Not checked: lints about run-time statistics
(0005 unused_index, 0020 table_bloat, 0031 unused_replication_slot), the Auth server's settings
(0012 auth_allow_anonymous_sign_ins), and extensions or services a plain database lacks (0019
pgmq queues, 0025 Storage buckets, 0026/0027 pg_graphql).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence

import psycopg

from tests.helpers import PROJECT_ROOT

# The schemas PostgREST serves (what 0028/0029 and the other "in API" lints look at).
SUPABASE_CONFIG = tomllib.loads((PROJECT_ROOT / "supabase" / "config.toml").read_text())
EXPOSED_SCHEMAS: list[str] = SUPABASE_CONFIG["api"]["schemas"]

# Schemas Supabase (or an extension) manages, which its linter leaves alone; everything else in
# the database is ours and linted.
SUPABASE_MANAGED_SCHEMAS = [
    "_timescaledb_cache", "_timescaledb_catalog", "_timescaledb_config", "_timescaledb_internal",
    "auth", "cron", "extensions", "graphql", "graphql_public", "information_schema", "net",
    "pgbouncer", "pgmq", "pgroonga", "pgsodium", "pgsodium_masks", "pgtle", "pg_catalog",
    "realtime", "repack", "storage", "supabase_functions", "supabase_migrations", "tiger",
    "topology", "vault",
]  # fmt: skip

# Tables anon may read: the public booking catalogue.
ANON_READABLE = {"medical_service", "time_slot"}

# Reusable conditions; `n` is the object's pg_namespace row.
OURS = "n.nspname <> all(%(managed)s) and n.nspname !~ '^pg_'"
EXPOSED = "n.nspname = any(%(exposed)s)"
API_READABLE = (
    "(has_table_privilege('anon', {oid}, 'select')"
    " or has_table_privilege('authenticated', {oid}, 'select'))"
)
NOT_FROM_EXTENSION = (
    "not exists (select from pg_depend e where e.objid = {oid} and e.deptype = 'e')"
)
SECURITY_INVOKER_VIEW = (
    "exists (select from unnest({reloptions}) o(option) where lower(o.option) in"
    " ('security_invoker=true', 'security_invoker=on', 'security_invoker=yes',"
    " 'security_invoker=1'))"
)
PARAMS = {"managed": SUPABASE_MANAGED_SCHEMAS, "exposed": EXPOSED_SCHEMAS}


def findings(conn: psycopg.Connection, query: str) -> list[str]:
    """The offending objects a lint query names (one text column), sorted."""
    return sorted(row[0] for row in conn.execute(query, PARAMS).fetchall())


def assert_clean(lint: str, offenders: Sequence[str]) -> None:
    assert not offenders, f"{lint}: {len(offenders)} finding(s)\n  " + "\n  ".join(offenders)


# -- RLS -------------------------------------------------------------------------------------


def test_every_table_in_an_exposed_schema_has_row_level_security(
    conn: psycopg.Connection,
) -> None:
    """House rule, stricter than lints 0013 rls_disabled_in_public and 0023
    sensitive_columns_exposed (both flag only API-readable tables without RLS): every table, with
    or without grants today."""
    offenders = findings(
        conn,
        "select format('%%I.%%I', n.nspname, c.relname) from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        f" where {EXPOSED} and c.relkind in ('r', 'p') and not c.relrowsecurity",
    )
    assert_clean("lint 0013 rls_disabled_in_public", offenders)


def test_no_table_has_policies_while_row_level_security_is_off(
    conn: psycopg.Connection,
) -> None:
    """Lint 0007 policy_exists_rls_disabled: policies on a table without RLS do nothing."""
    offenders = findings(
        conn,
        "select format('%%I.%%I (policies: %%s)', n.nspname, c.relname,"
        " string_agg(p.polname, ', ' order by p.polname))"
        " from pg_policy p join pg_class c on c.oid = p.polrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        f" where {OURS} and c.relkind in ('r', 'p') and not c.relrowsecurity"
        f" and {NOT_FROM_EXTENSION.format(oid='c.oid')}"
        " group by n.nspname, c.relname",
    )
    assert_clean("lint 0007 policy_exists_rls_disabled", offenders)


def test_every_table_with_row_level_security_has_a_policy(conn: psycopg.Connection) -> None:
    """Lint 0008 rls_enabled_no_policy (INFO), where it matters: a table an API role was
    granted but that has no policy answers that role with nothing, silently. (An ungranted
    `private` table with RLS on as a second lock, such as `private.limits`, is deliberate; the
    advisor lists it as INFO.)"""
    offenders = findings(
        conn,
        "select format('%%I.%%I', n.nspname, c.relname) from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        f" where {OURS} and c.relkind in ('r', 'p') and c.relrowsecurity"
        f" and {NOT_FROM_EXTENSION.format(oid='c.oid')}"
        " and not exists (select from pg_policy p where p.polrelid = c.oid)"
        " and exists (select from unnest(array['anon', 'authenticated']) r(role)"
        "             cross join unnest(array['select', 'insert', 'update', 'delete']) a(action)"
        "             where has_table_privilege(r.role, c.oid, a.action))",
    )
    assert_clean("lint 0008 rls_enabled_no_policy", offenders)


def test_each_table_has_one_permissive_policy_per_role_and_action(
    conn: psycopg.Connection,
) -> None:
    """Lint 0006 multiple_permissive_policies: Postgres evaluates every permissive policy of a
    role and action (OR-ed), so two cost twice; combine their conditions into one. `for all`
    counts for each of select, insert, update and delete; a policy `to public` for every role.
    Roles that bypass RLS and Postgres' own and Supabase's admin roles are left out."""
    offenders = findings(
        conn,
        """
        select format('%%I.%%I: %%s %%s (policies: %%s)', n.nspname, c.relname, r.rolname,
                      a.action, string_agg(format('%%L', p.polname), ', ' order by p.polname))
        from pg_policy p
        join pg_class c on c.oid = p.polrelid
        join pg_namespace n on n.oid = c.relnamespace
        join pg_roles r on r.oid = any(p.polroles) or p.polroles = '{0}'
        cross join lateral unnest(case p.polcmd
            when 'r' then '{select}' when 'a' then '{insert}' when 'w' then '{update}'
            when 'd' then '{delete}' else '{select,insert,update,delete}' end::text[])
            as a(action)
        where p.polpermissive and c.relkind = 'r'
          and r.rolname !~ '^pg_' and r.rolname not like 'supabase%%admin' and not r.rolbypassrls
        """
        f" and {OURS} and {NOT_FROM_EXTENSION.format(oid='c.oid')}"
        " group by n.nspname, c.relname, r.rolname, a.action having count(*) > 1",
    )
    assert_clean("lint 0006 multiple_permissive_policies", offenders)


def test_policies_call_auth_functions_once_per_statement(conn: psycopg.Connection) -> None:
    """Lint 0003 auth_rls_initplan, counted per call: each `auth.uid()`, `auth.jwt()`,
    `auth.role()`, `auth.email()` and `current_setting()` in a policy is wrapped in a scalar
    subquery (`(select auth.uid())`), which Postgres runs once per statement (an InitPlan)
    instead of once per row. Realtime's policies count too (Realtime Authorization)."""
    call = r"(?:auth\.(?:uid|jwt|role|email)|current_setting)\("
    offenders = []
    for schema, table, name, expression in conn.execute(
        "select n.nspname, c.relname, p.polname,"
        " concat_ws(' ', pg_get_expr(p.polqual, p.polrelid),"
        " pg_get_expr(p.polwithcheck, p.polrelid))"
        " from pg_policy p join pg_class c on c.oid = p.polrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        f" where ({OURS} or n.nspname = 'realtime')",
        PARAMS,
    ):
        calls = len(re.findall(rf"\b{call}", expression))
        wrapped = len(re.findall(rf"\bSELECT\s+[(\s]*{call}", expression))
        if calls != wrapped:
            offenders.append(f"{schema}.{table}: {name!r}")
    assert_clean("lint 0003 auth_rls_initplan", sorted(offenders))


def test_no_policy_reads_user_editable_metadata(conn: psycopg.Connection) -> None:
    """Lint 0015 rls_references_user_metadata: a user edits their own `user_metadata` (in the
    JWT, and `raw_user_meta_data` in `auth.users`), so no policy may decide on it."""
    offenders = findings(
        conn,
        "select format('%%I.%%I: %%L', n.nspname, c.relname, p.polname)"
        " from pg_policy p join pg_class c on c.oid = p.polrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        f" where ({OURS} or n.nspname = 'realtime')"
        " and concat_ws(' ', pg_get_expr(p.polqual, p.polrelid),"
        " pg_get_expr(p.polwithcheck, p.polrelid)) ~* '(raw_)?user_meta(data|_data)'",
    )
    assert_clean("lint 0015 rls_references_user_metadata", offenders)


def test_no_policy_lets_every_row_through(conn: psycopg.Connection) -> None:
    """Lint 0024 rls_policy_always_true: a permissive policy for the API roles whose `using`
    (update, delete, all) or `with check` (insert, update, all) is empty or always true turns
    RLS off for that action. `using (true)` on select is allowed (public catalogues)."""
    offenders = findings(
        conn,
        """
        with policy as (
            select n.nspname, c.relname, p.polname, p.polcmd,
                   regexp_replace(lower(coalesce(pg_get_expr(p.polqual, p.polrelid), '')),
                                  '\\s', '', 'g') as using_clause,
                   regexp_replace(lower(coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')),
                                  '\\s', '', 'g') as check_clause,
                   p.polwithcheck is null as no_check
            from pg_policy p
            join pg_class c on c.oid = p.polrelid
            join pg_namespace n on n.oid = c.relnamespace
            where p.polpermissive and c.relrowsecurity
              and (p.polroles = '{0}'
                   or p.polroles && array['anon'::regrole::oid, 'authenticated'::regrole::oid])
        """
        f" and {OURS})"
        """
        select format('%%I.%%I: %%L', nspname, relname, polname) from policy
        where (polcmd in ('w', 'd', '*')
               and using_clause in ('', 'true', '(true)', '1=1', '(1=1)'))
           or check_clause in ('true', '(true)', '1=1', '(1=1)')
           or (polcmd = 'a' and no_check)
           or (polcmd in ('w', '*') and no_check
               and using_clause in ('true', '(true)', '1=1', '(1=1)'))
        """,
    )
    assert_clean("lint 0024 rls_policy_always_true", offenders)


def test_no_read_policy_admits_sessions_without_identity(conn: psycopg.Connection) -> None:
    """Lint 0030 rls_policy_null_auth_disjunct, stricter: no permissive read policy for the API
    roles tests `auth.uid()`, `auth.jwt()`, `auth.role()` or `current_setting(…, true)` for
    null (`auth.uid() is null or …` admits every row to a session without a user)."""
    offenders = findings(
        conn,
        "select format('%%I.%%I: %%L', n.nspname, c.relname, p.polname)"
        " from pg_policy p join pg_class c on c.oid = p.polrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        f" where {OURS} and p.polpermissive and p.polcmd in ('r', '*')"
        " and (p.polroles = '{0}'"
        " or p.polroles && array['anon'::regrole::oid, 'authenticated'::regrole::oid])"
        " and pg_get_expr(p.polqual, p.polrelid) ~*"
        " '(auth\\.(uid|jwt|role)\\(\\)|current_setting\\([^)]*true\\))( AS \\w+\\))?"
        " IS (NOT )?NULL'",
    )
    assert_clean("lint 0030 rls_policy_null_auth_disjunct", offenders)


# -- What the API exposes --------------------------------------------------------------------


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


def _security_definer_functions_executable_by(role: str) -> str:
    return (
        "select format('%%s (%%s)', p.oid::regprocedure, l.lanname) from pg_proc p"
        " join pg_namespace n on n.oid = p.pronamespace"
        " join pg_language l on l.oid = p.prolang"
        f" where {EXPOSED} and p.prosecdef and has_function_privilege('{role}', p.oid, 'execute')"
    )


def test_no_security_definer_function_in_an_exposed_schema_is_executable_by_anon(
    conn: psycopg.Connection,
) -> None:
    """Lint 0028 anon_security_definer_function_executable: anyone with the public key can call
    `/rest/v1/rpc/<name>`, and a security-definer function bypasses RLS. Keep privileged work in
    `private` behind a security-invoker function in `public`."""
    offenders = findings(conn, _security_definer_functions_executable_by("anon"))
    assert_clean("lint 0028 anon_security_definer_function_executable", offenders)


def test_no_security_definer_function_in_an_exposed_schema_is_executable_by_signed_in_users(
    conn: psycopg.Connection,
) -> None:
    """Lint 0029 authenticated_security_definer_function_executable: the same for any account
    (signing up is open)."""
    offenders = findings(conn, _security_definer_functions_executable_by("authenticated"))
    assert_clean("lint 0029 authenticated_security_definer_function_executable", offenders)


def test_no_view_in_an_exposed_schema_runs_as_its_owner(conn: psycopg.Connection) -> None:
    """Lint 0010 security_definer_view: a view without `security_invoker` reads with its
    owner's rights, bypassing RLS, for every API role that can select it."""
    offenders = findings(
        conn,
        "select format('%%I.%%I', n.nspname, c.relname) from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        f" where {EXPOSED} and c.relkind = 'v' and {API_READABLE.format(oid='c.oid')}"
        f" and {NOT_FROM_EXTENSION.format(oid='c.oid')}"
        f" and not {SECURITY_INVOKER_VIEW.format(reloptions='c.reloptions')}",
    )
    assert_clean("lint 0010 security_definer_view", offenders)


def test_no_exposed_view_reveals_auth_users(conn: psycopg.Connection) -> None:
    """Lint 0002 auth_users_exposed: a view or materialized view in an exposed schema, readable
    by an API role, built on `auth.users`, shows every account unless it is a security-invoker
    view and `auth.users` has RLS."""
    offenders = findings(
        conn,
        "select distinct format('%%I.%%I', n.nspname, v.relname) from pg_depend d"
        " join pg_rewrite r on r.oid = d.objid and d.classid = 'pg_rewrite'::regclass"
        " join pg_class v on v.oid = r.ev_class"
        " join pg_namespace n on n.oid = v.relnamespace"
        " where d.refobjid = to_regclass('auth.users') and v.relkind in ('v', 'm')"
        f" and {EXPOSED} and {API_READABLE.format(oid='v.oid')}"
        f" and (v.relkind = 'm' or not {SECURITY_INVOKER_VIEW.format(reloptions='v.reloptions')}"
        "      or not (select u.relrowsecurity from pg_class u"
        "              where u.oid = to_regclass('auth.users')))",
    )
    assert_clean("lint 0002 auth_users_exposed", offenders)


def test_no_materialized_view_is_readable_through_the_api(conn: psycopg.Connection) -> None:
    """Lint 0016 materialized_view_in_api: materialized views have no RLS."""
    offenders = findings(
        conn,
        "select format('%%I.%%I', n.nspname, c.relname) from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        f" where {EXPOSED} and c.relkind = 'm' and {API_READABLE.format(oid='c.oid')}"
        f" and {NOT_FROM_EXTENSION.format(oid='c.oid')}",
    )
    assert_clean("lint 0016 materialized_view_in_api", offenders)


def test_no_foreign_table_is_readable_through_the_api(conn: psycopg.Connection) -> None:
    """Lint 0017 foreign_table_in_api: foreign tables have no RLS."""
    offenders = findings(
        conn,
        "select format('%%I.%%I', n.nspname, c.relname) from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        f" where {EXPOSED} and c.relkind = 'f' and {API_READABLE.format(oid='c.oid')}"
        f" and {NOT_FROM_EXTENSION.format(oid='c.oid')}",
    )
    assert_clean("lint 0017 foreign_table_in_api", offenders)


# -- Functions and extensions ----------------------------------------------------------------


def test_every_function_has_a_fixed_empty_search_path(conn: psycopg.Connection) -> None:
    """House rule, stricter than lint 0011 function_search_path_mutable (which accepts any
    fixed search_path): `set search_path = ''`, every name schema-qualified."""
    offenders = findings(
        conn,
        "select p.oid::regprocedure::text from pg_proc p"
        " join pg_namespace n on n.oid = p.pronamespace"
        f" where {OURS} and {NOT_FROM_EXTENSION.format(oid='p.oid')}"
        " and not coalesce('search_path=\"\"' = any(p.proconfig), false)",
    )
    assert_clean("lint 0011 function_search_path_mutable", offenders)


def test_no_extension_is_installed_in_public(conn: psycopg.Connection) -> None:
    """Lint 0014 extension_in_public: extensions go to `extensions`, out of the API (plpgsql is
    Postgres' own)."""
    offenders = findings(
        conn,
        "select x.extname from pg_extension x where x.extnamespace = 'public'::regnamespace"
        " and x.extname <> 'plpgsql'",
    )
    assert_clean("lint 0014 extension_in_public", offenders)


def test_every_extension_is_at_its_default_version(conn: psycopg.Connection) -> None:
    """Lint 0022 extension_versions_outdated: `alter extension … update` after a server
    upgrade (versions the server no longer ships are left alone)."""
    offenders = findings(
        conn,
        "select format('%%s %%s (default %%s)', a.name, a.installed_version, a.default_version)"
        " from pg_available_extensions a"
        " where a.installed_version is distinct from a.default_version"
        " and a.installed_version is not null and a.default_version is not null"
        " and exists (select from pg_available_extension_versions v"
        "             where v.name = a.name and v.installed)",
    )
    assert_clean("lint 0022 extension_versions_outdated", offenders)


# -- Tables, keys and indexes ----------------------------------------------------------------


def test_every_table_has_a_primary_key(conn: psycopg.Connection) -> None:
    """Lint 0004 no_primary_key (INFO): replication and PostgREST updates need one."""
    offenders = findings(
        conn,
        "select format('%%I.%%I', n.nspname, c.relname) from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        f" where {OURS} and c.relkind = 'r' and {NOT_FROM_EXTENSION.format(oid='c.oid')}"
        " and not exists (select from pg_index i where i.indrelid = c.oid and i.indisprimary)",
    )
    assert_clean("lint 0004 no_primary_key", offenders)


def test_every_foreign_key_has_a_covering_index(conn: psycopg.Connection) -> None:
    """Lint 0001 unindexed_foreign_keys (INFO): a valid index whose leading columns are the
    key's, in the key's order (deletes and joins on the referenced side use it)."""
    offenders = findings(
        conn,
        """
        select format('%%I.%%I: %%I', n.nspname, c.relname, k.conname)
        from pg_constraint k
        join pg_class c on c.oid = k.conrelid
        join pg_namespace n on n.oid = c.relnamespace
        where k.contype = 'f'
          and not exists (
              select from pg_index i
              where i.indrelid = k.conrelid and i.indisvalid
                and (i.indkey::int2[])[0:cardinality(k.conkey) - 1] = k.conkey
          )
        """
        f" and {OURS} and {NOT_FROM_EXTENSION.format(oid='c.oid')}",
    )
    assert_clean("lint 0001 unindexed_foreign_keys", offenders)


def test_no_table_has_two_identical_indexes(conn: psycopg.Connection) -> None:
    """Lint 0009 duplicate_index: identical definitions (name aside) cost every write twice."""
    offenders = findings(
        conn,
        """
        select format('%%I.%%I: %%s', n.nspname, c.relname,
                      string_agg(quote_ident(x.relname), ', ' order by x.relname))
        from pg_index i
        join pg_class c on c.oid = i.indrelid
        join pg_namespace n on n.oid = c.relnamespace
        join pg_class x on x.oid = i.indexrelid
        where c.relkind in ('r', 'm')
        """
        f" and {OURS} and {NOT_FROM_EXTENSION.format(oid='c.oid')}"
        """
        group by n.nspname, c.relname, x.relam, i.indisunique, i.indnullsnotdistinct,
                 i.indkey::text, i.indclass::text, i.indcollation::text, i.indoption::text,
                 pg_get_expr(i.indexprs, i.indrelid), pg_get_expr(i.indpred, i.indrelid)
        having count(*) > 1
        """,
    )
    assert_clean("lint 0009 duplicate_index", offenders)


def test_no_index_is_invalid(conn: psycopg.Connection) -> None:
    """Lint 0030 invalid_index: what an interrupted `create index concurrently` leaves behind."""
    offenders = findings(
        conn,
        "select format('%%I.%%I: %%I', n.nspname, c.relname, x.relname)"
        " from pg_index i join pg_class c on c.oid = i.indrelid"
        " join pg_class x on x.oid = i.indexrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        f" where {OURS} and not i.indisvalid and i.indisready"
        " and not exists (select from pg_stat_progress_create_index b"
        "                 where b.index_relid = i.indexrelid)",
    )
    assert_clean("lint 0030 invalid_index", offenders)


def test_autovacuum_is_on_for_every_table(conn: psycopg.Connection) -> None:
    """Lint 0030 autovacuum_disabled (INFO)."""
    offenders = findings(
        conn,
        "select format('%%I.%%I', n.nspname, c.relname) from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace"
        f" where {OURS} and c.relkind = 'r'"
        " and 'autovacuum_enabled=false' = any(c.reloptions)",
    )
    assert_clean("lint 0030 autovacuum_disabled", offenders)


def test_no_column_has_a_reg_type_that_blocks_pg_upgrade(conn: psycopg.Connection) -> None:
    """Lint 0018 unsupported_reg_types: pg_upgrade refuses columns of these reg* types (their
    oids change); store names or use regclass/regtype/regrole."""
    offenders = findings(
        conn,
        "select format('%%I.%%I.%%I %%s', n.nspname, c.relname, a.attname, a.atttypid::regtype)"
        " from pg_attribute a join pg_class c on c.oid = a.attrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname not in ('pg_catalog', 'information_schema', 'pgsodium')"
        " and a.attnum > 0 and not a.attisdropped"
        " and a.atttypid = any(array['regcollation', 'regconfig', 'regdictionary',"
        " 'regnamespace', 'regoper', 'regoperator', 'regproc', 'regprocedure']::regtype[])",
    )
    assert_clean("lint 0018 unsupported_reg_types", offenders)


def test_no_foreign_key_references_a_unique_constraint_of_auth(
    conn: psycopg.Connection,
) -> None:
    """Lint 0021 fkey_to_auth_unique: Supabase may change auth's unique constraints (email,
    phone); reference `auth.users (id)`, its primary key, only."""
    offenders = findings(
        conn,
        "select format('%%I.%%I: %%I', n.nspname, c.relname, k.conname) from pg_constraint k"
        " join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace"
        " join pg_class r on r.oid = k.confrelid"
        " join pg_index i on i.indexrelid = k.conindid"
        " where k.contype = 'f' and r.relnamespace = 'auth'::regnamespace"
        " and i.indisunique and not i.indisprimary",
    )
    assert_clean("lint 0021 fkey_to_auth_unique", offenders)
