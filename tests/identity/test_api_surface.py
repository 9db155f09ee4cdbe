"""The API surface of the identity and scheduling domains as Supabase's advisors and PostgREST
see it: no security definer function in public, one permissive policy per role and action, and
embeddings that stay unambiguous after the new foreign keys (profile.default_provider_id,
provider_invitations)."""

from __future__ import annotations

import psycopg
import pytest

# The RPCs of these domains, with who may call them (PostgREST: role has execute).
RPCS: dict[str, set[str]] = {
    "generate_time_slots(uuid,uuid,date,date)": {"authenticated", "service_role"},
    "request_reservation(uuid,text,text,jsonb)": {"anon", "authenticated", "service_role"},
    "approve_reservation_request(uuid)": {"authenticated", "service_role"},
    "reject_reservation_request(uuid,text)": {"authenticated", "service_role"},
    "cancel_reservation(uuid,text)": {"authenticated", "service_role"},
    "block_time_slot(uuid)": {"authenticated", "service_role"},
    "unblock_time_slot(uuid)": {"authenticated", "service_role"},
    "expire_reservation_requests()": {"service_role"},
    "expire_time_slots()": {"service_role"},
    "get_or_create_prescription_ticket(uuid,uuid)": {"authenticated", "service_role"},
    "invite_provider_member(uuid,uuid,text)": {"authenticated", "service_role"},
    "accept_provider_invitation(uuid)": {"authenticated", "service_role"},
    "decline_provider_invitation(uuid)": {"authenticated", "service_role"},
    "revoke_provider_invitation(uuid)": {"authenticated", "service_role"},
    "set_default_provider(uuid)": {"authenticated", "service_role"},
}

TABLES = (
    "appointment_note",
    "availability_rule",
    "medical_service",
    "profile",
    "provider_invitations",
    "provider_members",
    "provider_membership_events",
    "providers",
    "reservation",
    "reservation_request",
    "time_slot",
)


@pytest.mark.parametrize("signature", list(RPCS))
def test_rpc_is_security_invoker_and_callable_by_whom_it_was(
    conn: psycopg.Connection, signature: str
) -> None:
    row = conn.execute(
        "select p.prosecdef,"
        " array(select r from unnest(array['anon', 'authenticated', 'service_role']) as r"
        "       where has_function_privilege(r, p.oid, 'execute'))"
        " from pg_proc as p where p.oid = %s::regprocedure",
        [f"public.{signature}"],
    ).fetchone()
    assert row is not None
    assert row[0] is False
    assert set(row[1]) == RPCS[signature]


def test_one_permissive_policy_per_role_and_action(conn: psycopg.Connection) -> None:
    # Supabase lint 0006 multiple_permissive_policies, for the tables of these domains.
    rows = conn.execute(
        "select tablename, role, action, array_agg(policyname order by policyname)"
        " from pg_policies"
        " cross join lateral unnest(roles) as role"
        " cross join lateral unnest(case cmd when 'ALL'"
        "   then array['SELECT', 'INSERT', 'UPDATE', 'DELETE'] else array[cmd] end) as action"
        " where schemaname = 'public' and permissive = 'PERMISSIVE' and tablename = any(%s)"
        " group by tablename, role, action having count(*) > 1",
        [list(TABLES)],
    ).fetchall()
    assert rows == []


RELATIONSHIPS = """
with fk as (
    select c.conrelid as child, c.confrelid as parent, c.conkey
    from pg_constraint c
    join pg_namespace n on n.oid = c.connamespace
    where c.contype = 'f' and n.nspname = 'public'
),
pk as (
    select i.indrelid as rel, i.indkey::int2[] as cols
    from pg_index i where i.indisprimary
),
-- PostgREST: a direct foreign key either way, or many-to-many through a junction table whose
-- foreign keys to both tables are part of its primary key.
direct as (
    select count(*) as n from fk
    where (child, parent) in (
        (%(a)s::regclass, %(b)s::regclass), (%(b)s::regclass, %(a)s::regclass)
    )
),
junction as (
    select count(*) as n
    from fk as fa
    join fk as fb on fb.child = fa.child
    join pk on pk.rel = fa.child
    where fa.parent = %(a)s::regclass and fb.parent = %(b)s::regclass
      and fa.child not in (%(a)s::regclass, %(b)s::regclass)
      and fa.conkey <@ pk.cols and fb.conkey <@ pk.cols
)
select (select n from direct) + (select n from junction)
"""


@pytest.mark.parametrize(
    ("table_a", "table_b", "relationships"),
    [
        # The frontends' embeds (healthcare_tickets?select=*,prescription:prescriptions(*),...).
        ("healthcare_tickets", "prescriptions", 1),
        ("chat_threads", "healthcare_tickets", 1),
        # provider_members?select=*,profile(*),providers(*).
        ("provider_members", "profile", 1),
        ("provider_members", "providers", 1),
        # The new tables embed their provider without a hint.
        ("provider_invitations", "providers", 1),
        # Booking embeds: reservation?select=*,time_slot(*),medical_service(*), notes.
        ("reservation", "time_slot", 1),
        ("reservation", "medical_service", 1),
        ("appointment_note", "reservation", 1),
        # profile <-> providers: many-to-many through provider_members, and now the default
        # practice. An embed between the two needs a hint: providers!provider_members(*) or
        # providers!default_provider_id(*). No frontend query embeds them.
        ("profile", "providers", 2),
    ],
)
def test_postgrest_embeddings_stay_unambiguous(
    conn: psycopg.Connection, table_a: str, table_b: str, relationships: int
) -> None:
    row = conn.execute(
        RELATIONSHIPS, {"a": f"public.{table_a}", "b": f"public.{table_b}"}
    ).fetchone()
    assert row == (relationships,)
