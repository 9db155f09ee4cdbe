-- Ticket access: who is asking and what they may see. Small helpers that the RLS policies and
-- the ticket triggers share, so "who is a party" is written once.

-- True when the request comes through the API as anon or authenticated (PostgREST sets the role
-- per request). A security-definer function keeps the caller's role setting, so this still
-- tells an API request from the service, the worker or a DBA inside such a function.
create or replace function private.is_api_request()
returns boolean
language sql stable
set search_path = ''
as $fn$
    select coalesce(pg_catalog.current_setting('role', true), 'none') in ('anon', 'authenticated')
$fn$;

-- True when the statement runs with system privileges: any role but anon/authenticated. Code in
-- a security-definer function (claim_ticket, get_or_create_prescription_ticket) counts as
-- system: it has made its own checks. Must stay security invoker to see current_user.
create or replace function private.is_system_actor()
returns boolean
language sql stable
set search_path = ''
as $fn$
    select current_user not in ('anon', 'authenticated')
$fn$;

-- Where a change comes from, for the timeline: the session's app.source when set (lifefile,
-- backfill, worker, ...), else 'app' for API requests and 'system' for everything else.
create or replace function private.request_source()
returns text
language sql stable
set search_path = ''
as $fn$
    select coalesce(
        nullif(pg_catalog.current_setting('app.source', true), ''),
        case when private.is_api_request() then 'app' else 'system' end
    )
$fn$;

-- The fulfiller of a prescription ticket sees nothing of it until the doctor sends it.
-- Immutable SQL, so policies inline it.
create or replace function private.secondary_sees_ticket(p_ticket_type text, p_status text)
returns boolean
language sql immutable
set search_path = ''
as $fn$
    select not (p_ticket_type = 'prescription' and p_status = 'created')
$fn$;

-- The caller's roles on a ticket with these parties: any of patient, primary, secondary, admin.
create or replace function private.caller_ticket_roles(
    p_ticket_type text,
    p_status text,
    p_patient_id uuid,
    p_primary_provider_id uuid,
    p_secondary_provider_id uuid
)
returns text[]
language sql stable
security definer
set search_path = ''
as $fn$
    select array_remove(array[
        case when p_patient_id = (select auth.uid()) then 'patient' end,
        case when private.is_provider_member(p_primary_provider_id) then 'primary' end,
        case
            when private.secondary_sees_ticket(p_ticket_type, p_status)
                and private.is_provider_member(p_secondary_provider_id)
                then 'secondary'
        end,
        case when private.is_admin() then 'admin' end
    ], null)
$fn$;

-- Whether provider p_provider_id may take a ticket that needs p_required_kind (and, when the
-- ticket has a category and the provider lists expertise, has that category among it).
create or replace function private.provider_can_claim(
    p_provider_id uuid, p_required_kind text, p_category text
)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.providers as p
        where
            p.id = p_provider_id
            and p.is_active
            and p.kind = p_required_kind
            and (
                p_category is null
                or pg_catalog.cardinality(p.expertise) = 0
                or p_category = any(p.expertise)
            )
    )
$fn$;

-- Whether the caller acts for a provider that may claim an open ticket with these columns.
create or replace function private.caller_can_claim(
    p_ticket_type text, p_status text, p_required_kind text, p_category text
)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select
        exists (
            select from public.ticket_types as tt
            where tt.ticket_type = p_ticket_type and tt.claimable_status = p_status
        )
        and exists (
            select from public.provider_members as m
            where
                m.profile_id = (select auth.uid())
                and private.provider_can_claim(m.provider_id, p_required_kind, p_category)
        )
$fn$;

-- Whether the caller writes prescriptions: a doctor or a specialist.
create or replace function private.caller_can_prescribe()
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.profile as p
        where p.id = (select auth.uid()) and p.role in ('doctor', 'specialist')
    )
$fn$;

-- The kinds of active providers the caller acts for: a cheap first filter for open tickets.
create or replace function private.current_provider_kinds()
returns setof text
language sql stable
security definer
set search_path = ''
as $fn$
    select distinct p.kind
    from public.provider_members as m
    inner join public.providers as p on m.provider_id = p.id
    where m.profile_id = (select auth.uid()) and p.is_active
$fn$;

-- Whether the caller may read ticket p_ticket_id: as a party, or as an eligible claimer of an
-- open ticket. For tables that hang off a ticket and for Realtime channels.
create or replace function private.can_read_ticket(p_ticket_id uuid)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.healthcare_tickets as t
        where
            t.id = p_ticket_id
            and (
                pg_catalog.cardinality(private.caller_ticket_roles(
                    t.ticket_type, t.status, t.patient_id, t.primary_provider_id,
                    t.secondary_provider_id
                )) > 0
                or (
                    t.secondary_provider_id is null
                    and private.caller_can_claim(
                        t.ticket_type, t.status, t.required_provider_kind, t.category
                    )
                )
            )
    )
$fn$;

-- Whether the caller is a party to ticket p_ticket_id (claimers are not).
create or replace function private.is_ticket_party(p_ticket_id uuid)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.healthcare_tickets as t
        where
            t.id = p_ticket_id
            and pg_catalog.cardinality(private.caller_ticket_roles(
                t.ticket_type, t.status, t.patient_id, t.primary_provider_id,
                t.secondary_provider_id
            )) > 0
    )
$fn$;

-- The threads the caller is a member of. Policies call it as
-- `thread_id = any (array(select private.current_thread_ids()))`: once per statement.
create or replace function private.current_thread_ids()
returns setof uuid
language sql stable
security definer
set search_path = ''
as $fn$
    select m.thread_id
    from public.chat_thread_members as m
    where m.profile_id = (select auth.uid())
$fn$;

-- Whether the caller started legacy thread p_thread_id (one without a ticket); such a creator
-- manages its members, as the legacy product did.
create or replace function private.is_legacy_thread_creator(p_thread_id uuid)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.chat_threads as th
        where
            th.id = p_thread_id
            and th.ticket_id is null
            and th.created_by = (select auth.uid())
    )
$fn$;

-- Whether the caller may see a Realtime channel: 'ticket:<id>' channels of tickets they read.
create or replace function private.can_join_ticket_channel(p_topic text)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select
        coalesce(p_topic ~ '^ticket:[0-9a-fA-F-]{36}$', false)
        and private.is_ticket_party(pg_catalog.substr(p_topic, 8)::uuid)
$fn$;

revoke execute on function private.is_api_request() from public;
revoke execute on function private.is_system_actor() from public;
revoke execute on function private.request_source() from public;
revoke execute on function private.secondary_sees_ticket(text, text) from public;
revoke execute on function private.caller_ticket_roles(text, text, uuid, uuid, uuid) from public;
revoke execute on function private.provider_can_claim(uuid, text, text) from public;
revoke execute on function private.caller_can_claim(text, text, text, text) from public;
revoke execute on function private.caller_can_prescribe() from public;
revoke execute on function private.current_provider_kinds() from public;
revoke execute on function private.can_read_ticket(uuid) from public;
revoke execute on function private.is_ticket_party(uuid) from public;
revoke execute on function private.current_thread_ids() from public;
revoke execute on function private.is_legacy_thread_creator(uuid) from public;
revoke execute on function private.can_join_ticket_channel(text) from public;
grant execute on function private.is_api_request() to authenticated, service_role;
grant execute on function private.is_system_actor() to authenticated, service_role;
grant execute on function private.request_source() to authenticated, service_role;
grant execute on function private.secondary_sees_ticket(text, text) to authenticated, service_role;
grant execute on function private.caller_ticket_roles(
    text, text, uuid, uuid, uuid
) to authenticated, service_role;
grant execute on function private.provider_can_claim(
    uuid, text, text
) to authenticated, service_role;
grant execute on function private.caller_can_claim(
    text, text, text, text
) to authenticated, service_role;
grant execute on function private.caller_can_prescribe() to authenticated, service_role;
grant execute on function private.current_provider_kinds() to authenticated, service_role;
grant execute on function private.can_read_ticket(uuid) to authenticated, service_role;
grant execute on function private.is_ticket_party(uuid) to authenticated, service_role;
grant execute on function private.current_thread_ids() to authenticated, service_role;
grant execute on function private.is_legacy_thread_creator(uuid) to authenticated, service_role;
grant execute on function private.can_join_ticket_channel(text) to authenticated, service_role;
