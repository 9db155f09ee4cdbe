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

-- THE rule of who the fulfiller is: the secondary provider of a ticket is a party once the
-- ticket was sent (healthcare_tickets.sent_at, set once by the ticket triggers: at creation for
-- types without a draft, else on the first move out of the draft to any status but cancelled).
-- A drafted ticket cancelled before sending stays invisible to its fulfiller. Triggers and
-- helpers call this; policies, which run per row, spell the same condition out on the row's
-- own column (`sent_at is not null`), since a function with a search_path is never inlined.
create or replace function private.fulfiller_is_party(p_sent_at timestamptz)
returns boolean
language sql immutable
set search_path = ''
as $fn$
    select p_sent_at is not null
$fn$;

-- The caller's roles on ticket p_ticket: any of patient, primary, secondary, admin.
create or replace function private.caller_ticket_roles(p_ticket public.healthcare_tickets)
returns text[]
language sql stable
security definer
set search_path = ''
as $fn$
    select array_remove(array[
        case when p_ticket.patient_id = (select auth.uid()) then 'patient' end,
        case when private.is_provider_member(p_ticket.primary_provider_id) then 'primary' end,
        case
            when private.fulfiller_is_party(p_ticket.sent_at)
                and private.is_provider_member(p_ticket.secondary_provider_id)
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
                pg_catalog.cardinality(private.caller_ticket_roles(t)) > 0
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
            and pg_catalog.cardinality(private.caller_ticket_roles(t)) > 0
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

-- Whether profiles p_a and p_b know each other through care: the same person, members of one
-- provider, parties to one ticket (patient, requester's members, fulfiller's members once
-- sent), practitioner and patient of a reservation, or members of one thread already (legacy
-- conversations from before tickets, which the backfill turns into tickets). Guards who may be
-- put in touch through a legacy thread. Granted to no API role: it answers about any two people,
-- so only may_add_legacy_thread_member (for the caller's own threads) asks it.
create or replace function private.share_care(p_a uuid, p_b uuid)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    with party_tickets as (
        select t.id, who.profile_id
        from (values (p_a), (p_b)) as who (profile_id)
        cross join lateral (
            select t.id from public.healthcare_tickets as t
            where t.patient_id = who.profile_id
            union
            select t.id
            from public.provider_members as m
            inner join public.healthcare_tickets as t on m.provider_id = t.primary_provider_id
            where m.profile_id = who.profile_id
            union
            select t.id
            from public.provider_members as m
            inner join public.healthcare_tickets as t on m.provider_id = t.secondary_provider_id
            where m.profile_id = who.profile_id and private.fulfiller_is_party(t.sent_at)
        ) as t
    )

    select
        p_a = p_b
        or exists (
            select from public.provider_members as ma
            inner join public.provider_members as mb on ma.provider_id = mb.provider_id
            where ma.profile_id = p_a and mb.profile_id = p_b
        )
        or exists (
            select from party_tickets as ta
            inner join party_tickets as tb on ta.id = tb.id
            where ta.profile_id = p_a and tb.profile_id = p_b
        )
        or exists (
            select from public.reservation as r
            where
                (r.profile_id = p_a and r.patient_id = p_b)
                or (r.profile_id = p_b and r.patient_id = p_a)
        )
        or exists (
            select from public.chat_thread_members as ma
            inner join public.chat_thread_members as mb on ma.thread_id = mb.thread_id
            where ma.profile_id = p_a and mb.profile_id = p_b
        )
$fn$;

-- Whether the caller may add p_profile_id to thread p_thread_id: only the creator of a legacy
-- thread (no ticket), and only someone who shares a ticket or a provider with them (no
-- unsolicited contact under our name). Ticket threads follow their ticket's parties.
create or replace function private.may_add_legacy_thread_member(
    p_thread_id uuid, p_profile_id uuid
)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select
        private.is_legacy_thread_creator(p_thread_id)
        and private.share_care((select auth.uid()), p_profile_id)
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
revoke execute on function private.fulfiller_is_party(timestamptz) from public;
revoke execute on function private.caller_ticket_roles(public.healthcare_tickets) from public;
revoke execute on function private.provider_can_claim(uuid, text, text) from public;
revoke execute on function private.caller_can_claim(text, text, text, text) from public;
revoke execute on function private.caller_can_prescribe() from public;
revoke execute on function private.current_provider_kinds() from public;
revoke execute on function private.can_read_ticket(uuid) from public;
revoke execute on function private.is_ticket_party(uuid) from public;
revoke execute on function private.current_thread_ids() from public;
revoke execute on function private.is_legacy_thread_creator(uuid) from public;
revoke execute on function private.can_join_ticket_channel(text) from public;
revoke execute on function private.share_care(uuid, uuid) from public;
revoke execute on function private.may_add_legacy_thread_member(uuid, uuid) from public;
grant execute on function private.is_api_request() to authenticated, service_role;
grant execute on function private.is_system_actor() to authenticated, service_role;
grant execute on function private.request_source() to authenticated, service_role;
grant execute on function private.fulfiller_is_party(timestamptz) to authenticated, service_role;
grant execute on function private.caller_ticket_roles(
    public.healthcare_tickets
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
grant execute on function private.may_add_legacy_thread_member(
    uuid, uuid
) to authenticated, service_role;
