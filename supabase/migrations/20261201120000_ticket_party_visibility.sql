-- One rule for who the fulfiller of a ticket is, on every surface: the secondary provider is a
-- party once the ticket was sent (healthcare_tickets.sent_at; private.fulfiller_is_party).
-- Before this, the policies of healthcare_tickets followed sent_at but thread membership,
-- messages, the timeline, prescriptions and their items, notifications and the ticket:<id>
-- Realtime channel still used the ticket's status, so a prescription, referral or diagnostic
-- ticket cancelled before it was sent became visible to its fulfiller.
-- Also: claim_ticket answers a stranger only with a generic CH008 and does its work in a
-- private security-definer function behind a security-invoker wrapper; a non-member posting a
-- message learns nothing about the thread; ids of threads and messages are the database's;
-- legacy threads take only members who share a ticket or provider with their creator; one
-- select policy on chat_thread_members; members leaving a provider lose its tickets'
-- notifications; threads of tickets and messages are not deleted through the API
-- (service_role included); realtime.messages policies bind the row's topic.
-- Every definition below is the current one from functions-sql/ and policies/.

-- From functions-sql/tickets_access.sql
-- ------------------------------------------------------------------------------------------

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

-- The caller's roles on a ticket known only by its type, status and parties (kept for callers
-- that have no row at hand; prefer caller_ticket_roles(ticket)). Without sent_at it errs on the
-- side of hiding: the fulfiller of a drafted ticket counts only at a status that is neither the
-- draft nor cancelled (a cancelled draft may never have been sent).
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
            when exists (
                select from public.ticket_types as tt
                where
                    tt.ticket_type = p_ticket_type
                    and (
                        not tt.starts_as_draft
                        or p_status not in (tt.initial_status, 'cancelled')
                    )
            )
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
revoke execute on function private.share_care(uuid, uuid) from public;
revoke execute on function private.may_add_legacy_thread_member(uuid, uuid) from public;
grant execute on function private.is_api_request() to authenticated, service_role;
grant execute on function private.is_system_actor() to authenticated, service_role;
grant execute on function private.request_source() to authenticated, service_role;
grant execute on function private.fulfiller_is_party(timestamptz) to authenticated, service_role;
grant execute on function private.caller_ticket_roles(
    public.healthcare_tickets
) to authenticated, service_role;
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
grant execute on function private.may_add_legacy_thread_member(
    uuid, uuid
) to authenticated, service_role;

-- From functions-sql/tickets_threads.sql
-- ------------------------------------------------------------------------------------------

-- Ticket threads: every ticket has one chat thread (created by trigger, legacy-compatible
-- order_id/metadata), whose members are kept equal to the ticket's parties; messages pass a gate
-- (a prescription ticket's thread stays closed until the prescription is attached) and are
-- posted as the caller.

-- The legacy lookup keys a thread carries: metadata.target_id (the fulfiller) and
-- metadata.prescription_id, so `order_id + metadata->>target_id` still finds ticket threads.
create or replace function private.ticket_thread_metadata(p_ticket public.healthcare_tickets)
returns jsonb
language sql immutable
set search_path = ''
as $fn$
    select pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
        'ticket_id', p_ticket.id,
        'target_id', p_ticket.secondary_provider_id,
        'prescription_id', p_ticket.prescription_id
    ))
$fn$;

-- Makes the members of the threads of tickets p_ticket_ids equal to their parties: the
-- patient, every member of the primary provider, and every member of the secondary provider
-- once the ticket was sent (private.fulfiller_is_party). Set-based, so a staff change at a
-- large provider is one statement.
create or replace function private.sync_ticket_thread_members(p_ticket_ids uuid[])
returns void
language sql
security definer
set search_path = ''
as $fn$
    with desired as (
        select distinct on (th.id, party.profile_id)
            th.id as thread_id,
            party.profile_id,
            party.role
        from public.healthcare_tickets as t
        inner join public.chat_threads as th on t.id = th.ticket_id
        cross join lateral (
            select t.patient_id as profile_id, 'patient' as role, 1 as priority
            where t.patient_id is not null
            union all
            select m.profile_id, 'primary', 2
            from public.provider_members as m
            where m.provider_id = t.primary_provider_id
            union all
            select m.profile_id, 'secondary', 3
            from public.provider_members as m
            where
                m.provider_id = t.secondary_provider_id
                and private.fulfiller_is_party(t.sent_at)
        ) as party
        where t.id = any(p_ticket_ids)
        order by th.id, party.profile_id, party.priority
    ),

    removed as (
        delete from public.chat_thread_members as cm
        using public.chat_threads as th
        where
            cm.thread_id = th.id
            and th.ticket_id = any(p_ticket_ids)
            and not exists (
                select from desired as d
                where d.thread_id = cm.thread_id and d.profile_id = cm.profile_id
            )
    )

    insert into public.chat_thread_members (thread_id, profile_id, role)
    select d.thread_id, d.profile_id, d.role from desired as d
    on conflict (thread_id, profile_id) do update
        set role = excluded.role
        where chat_thread_members.role is distinct from excluded.role
$fn$;

create or replace function private.create_ticket_thread()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    insert into public.chat_threads (ticket_id, order_id, order_type, title, metadata, created_by)
    values (
        new.id,
        new.appointment_id,
        new.ticket_type,
        coalesce(new.title, pg_catalog.initcap(new.ticket_type) || ' ticket'),
        private.ticket_thread_metadata(new),
        new.created_by
    );
    perform private.sync_ticket_thread_members(array[new.id]);
    return null;
end
$fn$;

create or replace function private.sync_ticket_thread()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if new.appointment_id is distinct from old.appointment_id
        or new.secondary_provider_id is distinct from old.secondary_provider_id
        or new.prescription_id is distinct from old.prescription_id
        or new.title is distinct from old.title then
        update public.chat_threads as th
        set
            order_id = new.appointment_id,
            title = coalesce(new.title, th.title),
            metadata = (th.metadata - 'target_id' - 'prescription_id')
            || private.ticket_thread_metadata(new)
        where th.ticket_id = new.id;
    end if;
    if new.patient_id is distinct from old.patient_id
        or new.primary_provider_id is distinct from old.primary_provider_id
        or new.secondary_provider_id is distinct from old.secondary_provider_id
        or private.fulfiller_is_party(new.sent_at)
        <> private.fulfiller_is_party(old.sent_at) then
        perform private.sync_ticket_thread_members(array[new.id]);
    end if;
    return null;
end
$fn$;

-- Provider staff come and go: the threads of the provider's tickets follow.
create or replace function private.sync_provider_ticket_threads()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_provider_ids uuid[] := array_remove(array[
        case when tg_op <> 'INSERT' then old.provider_id end,
        case when tg_op <> 'DELETE' then new.provider_id end
    ], null);
begin
    perform private.sync_ticket_thread_members(array(
        select t.id from public.healthcare_tickets as t
        where t.primary_provider_id = any(v_provider_ids)
        union
        select t.id from public.healthcare_tickets as t
        where t.secondary_provider_id = any(v_provider_ids)
    ));
    return null;
end
$fn$;

-- A ticket's thread belongs to the ticket: only the system relinks it or changes its order keys;
-- its metadata always carries the ticket's lookup keys, whatever a client writes over it.
create or replace function private.protect_ticket_thread()
returns trigger
language plpgsql
set search_path = ''
as $fn$
declare
    v_ticket public.healthcare_tickets;
begin
    if not private.is_system_actor() and (
        new.ticket_id is distinct from old.ticket_id
        or (old.ticket_id is not null and (
            new.order_id is distinct from old.order_id
            or new.order_type is distinct from old.order_type
            or new.created_by is distinct from old.created_by
        ))
    ) then
        raise exception 'chat thread %: ticket_id, order_id, order_type and created_by of a '
            'ticket''s thread are set by the ticket (CH007)', old.id
            using errcode = 'CH007', hint = 'Change the ticket instead.';
    end if;
    if new.ticket_id is not null then
        select t.* into v_ticket from public.healthcare_tickets as t where t.id = new.ticket_id;
        if found then
            new.metadata := (coalesce(new.metadata, '{}') - 'target_id' - 'prescription_id')
            || private.ticket_thread_metadata(v_ticket);
        end if;
    end if;
    return new;
end
$fn$;

-- Before a message is stored: it is posted as the caller (no impersonation, CH008), and a
-- prescription ticket's thread takes no message until the prescription is attached (CH004).
-- Authorisation first: for a caller who is not a member of the thread this says nothing about
-- the thread or its ticket; the insert policy refuses the row (42501).
create or replace function private.check_chat_message()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket public.healthcare_tickets;
begin
    if private.is_api_request() then
        if not exists (
            select from public.chat_thread_members as m
            where m.thread_id = new.thread_id and m.profile_id = (select auth.uid())
        ) then
            return new;
        end if;
        new.sender_id := coalesce(new.sender_id, (select auth.uid()));
        if new.sender_id is distinct from (select auth.uid()) then
            raise exception 'messages are posted as yourself; sender_id % is not you (CH008)',
                new.sender_id
                using errcode = 'CH008', hint = 'Leave sender_id out; it is set for you.';
        end if;
        if new.kind = 'system' then
            raise exception 'system messages are written by the system only (CH008)'
                using errcode = 'CH008', hint = 'Post kind ''text'', ''image'' or ''file''.';
        end if;
    end if;
    select t.* into v_ticket
    from public.chat_threads as th
    inner join public.healthcare_tickets as t on th.ticket_id = t.id
    where th.id = new.thread_id;
    if found and v_ticket.ticket_type = 'prescription' and v_ticket.prescription_id is null then
        raise exception 'ticket % is ''%''; attach a prescription before posting messages (CH004)',
            v_ticket.id, v_ticket.status
            using errcode = 'CH004',
            hint = 'Save the prescription and link it to the ticket (prescription_id) first.';
    end if;
    return new;
end
$fn$;

-- A ticket's thread, and with it its messages, is kept as long as its ticket: no API role
-- (service_role included) deletes it; only the ticket's own deletion (a documented erasure, by
-- the database owner) cascades to it. Legacy threads (no ticket) may still be deleted by the
-- service while they are being migrated.
create or replace function private.keep_ticket_thread()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    if old.ticket_id is not null
        and current_user in ('anon', 'authenticated', 'service_role') then
        raise exception 'chat thread % belongs to a ticket and is kept with it (42501)', old.id
            using errcode = '42501',
            hint = 'Threads of tickets are never deleted through the API.';
    end if;
    return old;
end
$fn$;

-- A new message moves its thread up the inbox.
create or replace function private.touch_chat_thread()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    update public.chat_threads set updated_at = pg_catalog.now() where id = new.thread_id;
    return null;
end
$fn$;

revoke execute on function private.ticket_thread_metadata(public.healthcare_tickets) from public;
revoke execute on function private.sync_ticket_thread_members(uuid[]) from public;
revoke execute on function private.create_ticket_thread() from public;
revoke execute on function private.sync_ticket_thread() from public;
revoke execute on function private.sync_provider_ticket_threads() from public;
revoke execute on function private.protect_ticket_thread() from public;
revoke execute on function private.check_chat_message() from public;
revoke execute on function private.touch_chat_thread() from public;
revoke execute on function private.keep_ticket_thread() from public;
grant execute on function private.ticket_thread_metadata(
    public.healthcare_tickets
) to authenticated, service_role;

drop trigger if exists create_ticket_thread on public.healthcare_tickets;
create trigger create_ticket_thread
after insert on public.healthcare_tickets
for each row execute function private.create_ticket_thread();

drop trigger if exists sync_ticket_thread on public.healthcare_tickets;
create trigger sync_ticket_thread
after update on public.healthcare_tickets
for each row execute function private.sync_ticket_thread();

drop trigger if exists sync_provider_ticket_threads on public.provider_members;
create trigger sync_provider_ticket_threads
after insert or update or delete on public.provider_members
for each row execute function private.sync_provider_ticket_threads();

drop trigger if exists protect_ticket_thread on public.chat_threads;
create trigger protect_ticket_thread
before update on public.chat_threads
for each row execute function private.protect_ticket_thread();

drop trigger if exists keep_ticket_thread on public.chat_threads;
create trigger keep_ticket_thread
before delete on public.chat_threads
for each row execute function private.keep_ticket_thread();

drop trigger if exists set_updated_at on public.chat_threads;
create trigger set_updated_at
before update on public.chat_threads
for each row execute function private.set_updated_at();

drop trigger if exists check_chat_message on public.chat_messages;
create trigger check_chat_message
before insert on public.chat_messages
for each row execute function private.check_chat_message();

drop trigger if exists touch_chat_thread on public.chat_messages;
create trigger touch_chat_thread
after insert on public.chat_messages
for each row execute function private.touch_chat_thread();

-- From functions-sql/tickets_notifications.sql
-- ------------------------------------------------------------------------------------------

-- In-app notifications: rows in public.notifications written by triggers at each trigger point
-- of the ticket workflow. Nobody is notified of their own action, and a backfill
-- (app.source = 'backfill') notifies no one about history.

-- Stores one notification for each distinct recipient, leaving out the caller.
create or replace function private.notify(
    p_recipients uuid[],
    p_ticket_id uuid,
    p_type text,
    p_title text,
    p_body text,
    p_data jsonb default '{}'
)
returns void
language sql
security definer
set search_path = ''
as $fn$
    insert into public.notifications (recipient_id, ticket_id, type, title, body, data)
    select distinct r.recipient_id, p_ticket_id, p_type, p_title, p_body, p_data
    from pg_catalog.unnest(p_recipients) as r (recipient_id)
    where
        r.recipient_id is not null
        and r.recipient_id is distinct from (select auth.uid())
        and private.request_source() <> 'backfill'
$fn$;

create or replace function private.provider_member_ids(p_provider_id uuid)
returns uuid[]
language sql stable
security definer
set search_path = ''
as $fn$
    select coalesce(array_agg(m.profile_id), '{}')
    from public.provider_members as m
    where m.provider_id = p_provider_id
$fn$;

-- Everyone who may claim an open ticket needing p_required_kind in p_category.
create or replace function private.claim_pool_member_ids(p_required_kind text, p_category text)
returns uuid[]
language sql stable
security definer
set search_path = ''
as $fn$
    select coalesce(array_agg(distinct m.profile_id), '{}')
    from public.provider_members as m
    where private.provider_can_claim(m.provider_id, p_required_kind, p_category)
$fn$;

-- A crisis reaches every counsellor (members of active counsellor providers, and users whose
-- role is counselor) and every admin.
create or replace function private.crisis_responder_ids()
returns uuid[]
language sql stable
security definer
set search_path = ''
as $fn$
    select coalesce(array_agg(distinct x.id), '{}')
    from (
        select m.profile_id as id
        from public.provider_members as m
        inner join public.providers as p on m.provider_id = p.id
        where p.kind = 'counselor' and p.is_active
        union
        select pr.id from public.profile as pr where pr.role in ('counselor', 'admin')
    ) as x
$fn$;

create or replace function private.ticket_label(p_ticket public.healthcare_tickets)
returns text
language sql immutable
set search_path = ''
as $fn$
    select coalesce(p_ticket.title, pg_catalog.initcap(p_ticket.ticket_type) || ' ticket')
$fn$;

create or replace function private.notify_ticket_created()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_data jsonb := pg_catalog.jsonb_build_object(
        'ticket_id', new.id, 'ticket_type', new.ticket_type, 'status', new.status
    );
begin
    if new.ticket_type = 'consultation' and new.status = 'requested' then
        perform private.notify(
            case
                when new.secondary_provider_id is not null
                    then private.provider_member_ids(new.secondary_provider_id)
                else private.claim_pool_member_ids(new.required_provider_kind, new.category)
            end,
            new.id, 'consultation_requested', 'New consultation request',
            private.ticket_label(new), v_data
        );
    end if;
    if new.ticket_type = 'counseling' and new.urgency = 'crisis' then
        perform private.notify(
            private.crisis_responder_ids(), new.id, 'counseling_crisis',
            'Crisis: counselling needed now', private.ticket_label(new), v_data
        );
    end if;
    return null;
end
$fn$;

-- A status change reaches the patient and the other party (not the acting side's colleagues;
-- a system change, such as a pharmacy feed, counts as the fulfiller's side). A ticket that
-- becomes open reaches the providers that may claim it.
create or replace function private.notify_ticket_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_side text := private.timeline_actor_kind(old, new);
    v_type public.ticket_types;
    v_data jsonb := pg_catalog.jsonb_build_object(
        'ticket_id', new.id, 'ticket_type', new.ticket_type, 'status', new.status,
        'from_status', old.status
    );
begin
    select * into v_type from public.ticket_types where ticket_type = new.ticket_type;
    if new.status is distinct from old.status then
        perform private.notify(
            array[new.patient_id]
            || case
                when v_side = 'primary' then '{}'
                else private.provider_member_ids(new.primary_provider_id)
            end
            || case
                when v_side in ('secondary', 'system')
                    or not private.fulfiller_is_party(new.sent_at)
                    then '{}'
                else private.provider_member_ids(new.secondary_provider_id)
            end,
            new.id,
            new.ticket_type || '_' || new.status,
            pg_catalog.initcap(new.ticket_type) || ' ' || pg_catalog.replace(new.status, '_', ' '),
            pg_catalog.format(
                '%s is now %s', private.ticket_label(new), pg_catalog.replace(new.status, '_', ' ')
            ),
            v_data
        );
        if new.secondary_provider_id is null and new.status = v_type.claimable_status then
            perform private.notify(
                private.claim_pool_member_ids(new.required_provider_kind, new.category),
                new.id, new.ticket_type || '_open', 'New ' || new.ticket_type || ' to claim',
                private.ticket_label(new), v_data
            );
        end if;
    elsif new.ticket_type = 'consultation' and new.status = 'requested'
        and new.secondary_provider_id is distinct from old.secondary_provider_id
        and new.secondary_provider_id is not null then
        perform private.notify(
            private.provider_member_ids(new.secondary_provider_id), new.id,
            'consultation_requested', 'New consultation request', private.ticket_label(new),
            v_data
        );
    end if;
    return null;
end
$fn$;

-- A new message reaches the thread's other members.
create or replace function private.notify_chat_message()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket_id uuid;
begin
    select th.ticket_id into v_ticket_id from public.chat_threads as th where th.id = new.thread_id;
    perform private.notify(
        array(
            select m.profile_id from public.chat_thread_members as m
            where m.thread_id = new.thread_id and m.profile_id is distinct from new.sender_id
        ),
        v_ticket_id, 'chat_message', 'New message', pg_catalog.left(new.body, 140),
        pg_catalog.jsonb_build_object('thread_id', new.thread_id, 'message_id', new.id)
    );
    return null;
end
$fn$;

-- A member who leaves a provider (removed, or moved elsewhere) loses the notifications of the
-- tickets they knew through it, message excerpts included, unless they are still a party to the
-- ticket another way (its patient, a member of its other provider, an admin).
create or replace function private.forget_left_provider_notifications()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if tg_op = 'UPDATE' and new.provider_id = old.provider_id
        and new.profile_id = old.profile_id then
        return null;
    end if;
    delete from public.notifications as n
    using public.healthcare_tickets as t
    where
        n.recipient_id = old.profile_id
        and n.ticket_id = t.id
        and (t.primary_provider_id = old.provider_id or t.secondary_provider_id = old.provider_id)
        and t.patient_id is distinct from old.profile_id
        and not exists (
            select from public.provider_members as m
            where
                m.profile_id = old.profile_id
                and (
                    m.provider_id = t.primary_provider_id
                    or (
                        m.provider_id = t.secondary_provider_id
                        and private.fulfiller_is_party(t.sent_at)
                    )
                )
        )
        and not exists (
            select from public.profile as p
            where p.id = old.profile_id and p.role = 'admin'
        );
    return null;
end
$fn$;

revoke execute on function private.notify(uuid[], uuid, text, text, text, jsonb) from public;
revoke execute on function private.provider_member_ids(uuid) from public;
revoke execute on function private.claim_pool_member_ids(text, text) from public;
revoke execute on function private.crisis_responder_ids() from public;
revoke execute on function private.ticket_label(public.healthcare_tickets) from public;
revoke execute on function private.notify_ticket_created() from public;
revoke execute on function private.notify_ticket_changed() from public;
revoke execute on function private.notify_chat_message() from public;
revoke execute on function private.forget_left_provider_notifications() from public;

drop trigger if exists notify_ticket_created on public.healthcare_tickets;
create trigger notify_ticket_created
after insert on public.healthcare_tickets
for each row execute function private.notify_ticket_created();

drop trigger if exists notify_ticket_changed on public.healthcare_tickets;
create trigger notify_ticket_changed
after update on public.healthcare_tickets
for each row execute function private.notify_ticket_changed();

drop trigger if exists notify_chat_message on public.chat_messages;
create trigger notify_chat_message
after insert on public.chat_messages
for each row execute function private.notify_chat_message();

drop trigger if exists forget_left_provider_notifications on public.provider_members;
create trigger forget_left_provider_notifications
after update or delete on public.provider_members
for each row execute function private.forget_left_provider_notifications();

-- From functions-sql/tickets_claiming.sql
-- ------------------------------------------------------------------------------------------

-- Claiming: a provider takes an open ticket (no fulfiller yet, at its type's claimable status).
-- Exactly one of any number of concurrent claims wins.

-- The work of public.claim_ticket, with the privileges it needs (it locks and updates a ticket
-- the caller may not yet read). Answers only what the caller may know: a ticket they could not
-- see as open is refused with one generic CH008, whatever its status or whether it exists; a
-- provider that could have claimed the open ticket and lost the race gets CH003.
create or replace function private.claim_ticket(p_ticket_id uuid, p_provider_id uuid)
returns public.healthcare_tickets
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket public.healthcare_tickets;
    v_type public.ticket_types;
    v_eligible boolean;
begin
    if (select auth.uid()) is null then
        raise exception 'sign in to claim tickets'
            using errcode = '42501', hint = 'Call claim_ticket as a signed-in provider member.';
    end if;
    if not private.is_provider_member(p_provider_id) then
        raise exception 'you do not act for provider % (CH008)', p_provider_id
            using errcode = 'CH008', hint = 'Claim for a provider you are a member of.';
    end if;
    -- The row lock serialises concurrent claims: each waits for the one before it and then
    -- sees the ticket as that claim left it.
    select t.* into v_ticket from public.healthcare_tickets as t
    where t.id = p_ticket_id
    for update;
    select tt.* into v_type from public.ticket_types as tt
    where tt.ticket_type = v_ticket.ticket_type;
    -- Whether this provider is one the open ticket was shown to (kind, expertise, active).
    v_eligible := v_ticket.id is not null
        and v_type.claimable_status is not null
        and private.provider_can_claim(
            p_provider_id, v_ticket.required_provider_kind, v_ticket.category
        );
    if v_eligible and v_ticket.secondary_provider_id is null
        and v_ticket.status = v_type.claimable_status then
        update public.healthcare_tickets as t
        set
            secondary_provider_id = p_provider_id,
            status = v_type.claimed_status,
            claimed_at = pg_catalog.now()
        where t.id = p_ticket_id
        returning t.* into v_ticket;
        return v_ticket;
    end if;
    if v_eligible and v_ticket.claimed_at is not null then
        raise exception 'ticket % has already been claimed (CH003)', p_ticket_id
            using errcode = 'CH003', hint = 'Pick another open ticket.';
    end if;
    raise exception 'ticket % is not open for provider % to claim (CH008)',
        p_ticket_id, p_provider_id
        using errcode = 'CH008',
        hint = 'Claim open tickets that are listed for you: your kind of provider and expertise.';
end
$fn$;

-- claim_ticket(p_ticket_id, p_provider_id): the caller, acting for provider p_provider_id,
-- takes open ticket p_ticket_id. Returns the claimed ticket (secondary_provider_id set, status
-- at the type's claimed status, claimed_at set).
-- Raises 42501 when no user is signed in; CH008 when the caller does not act for the provider,
-- or the ticket is not one that provider could see open (unknown, not open for claiming, another
-- kind or expertise); CH003 when that provider could have claimed it but another claim won.
create or replace function public.claim_ticket(p_ticket_id uuid, p_provider_id uuid)
returns public.healthcare_tickets
language sql
security invoker
set search_path = ''
as $fn$
    select * from private.claim_ticket(p_ticket_id, p_provider_id)
$fn$;

revoke execute on function private.claim_ticket(uuid, uuid) from public;
grant execute on function private.claim_ticket(uuid, uuid) to authenticated, service_role;
revoke execute on function public.claim_ticket(uuid, uuid) from public, anon;
grant execute on function public.claim_ticket(uuid, uuid) to authenticated, service_role;

-- From policies/chat_threads.sql
-- ------------------------------------------------------------------------------------------

-- chat_threads: members read their threads (a ticket's thread: its parties, kept in sync by
-- triggers), admins read all. Threads of tickets are created by the ticket; a legacy thread
-- (no ticket) may still be started by a signed-in user during the rollout. Ids are the
-- database's (a client-chosen id would reveal existing ones). Nobody deletes a ticket's thread
-- through the API (trigger keep_ticket_thread, service_role included); the service may still
-- delete legacy threads while they are migrated.

alter table public.chat_threads enable row level security;

revoke all on public.chat_threads from anon, authenticated, service_role;
grant select on public.chat_threads to authenticated;
grant insert (order_id, order_type, title, metadata, created_by)
on public.chat_threads to authenticated;
grant update (title, metadata) on public.chat_threads to authenticated;
grant select, insert, update, delete on public.chat_threads to service_role;

drop policy if exists "Thread members can read threads" on public.chat_threads;
create policy "Thread members can read threads"
on public.chat_threads for select to authenticated
using (
    -- A correlated lookup of the caller's own membership (primary key), not an array of all
    -- their threads: a pharmacist is a member of thousands.
    exists (
        select from public.chat_thread_members as m
        where m.thread_id = chat_threads.id and m.profile_id = (select auth.uid())
    )
    or (ticket_id is null and created_by = (select auth.uid()))
    or (select private.is_admin())
);

drop policy if exists "Users can start legacy threads" on public.chat_threads;
create policy "Users can start legacy threads"
on public.chat_threads for insert to authenticated
with check (ticket_id is null and created_by = (select auth.uid()));

drop policy if exists "Thread members can rename threads" on public.chat_threads;
create policy "Thread members can rename threads"
on public.chat_threads for update to authenticated
using (
    exists (
        select from public.chat_thread_members as m
        where m.thread_id = chat_threads.id and m.profile_id = (select auth.uid())
    )
)
with check (
    exists (
        select from public.chat_thread_members as m
        where m.thread_id = chat_threads.id and m.profile_id = (select auth.uid())
    )
);

-- From policies/chat_thread_members.sql
-- ------------------------------------------------------------------------------------------

-- chat_thread_members: a ticket thread's members are its parties (triggers keep them so);
-- members see who else is in the thread and mark it read. The creator of a legacy thread (no
-- ticket) manages its members, as before the rollout, but adds only people they share a ticket
-- or a provider with (private.may_add_legacy_thread_member): no unsolicited contact.
-- One permissive policy per role and action.

alter table public.chat_thread_members enable row level security;

revoke all on public.chat_thread_members from anon, authenticated, service_role;
grant select, insert, delete on public.chat_thread_members to authenticated;
grant update (last_read_at) on public.chat_thread_members to authenticated;
grant select, insert, update, delete on public.chat_thread_members to service_role;

-- The caller's own row comes first: the policies of chat_threads and chat_messages look it up
-- by primary key, and the OR stops there without computing the caller's threads.
drop policy if exists "Users can read their own memberships" on public.chat_thread_members;
drop policy if exists "Thread members can read members" on public.chat_thread_members;
drop policy if exists "Thread members can read who is in their threads"
on public.chat_thread_members;
create policy "Thread members can read who is in their threads"
on public.chat_thread_members for select to authenticated
using (
    profile_id = (select auth.uid())
    or thread_id = any(array(select private.current_thread_ids()))
    or (select private.is_admin())
);

drop policy if exists "Legacy thread creators can add members" on public.chat_thread_members;
create policy "Legacy thread creators can add members"
on public.chat_thread_members for insert to authenticated
with check (private.may_add_legacy_thread_member(thread_id, profile_id));

drop policy if exists "Members can mark their threads read" on public.chat_thread_members;
create policy "Members can mark their threads read"
on public.chat_thread_members for update to authenticated
using (profile_id = (select auth.uid()))
with check (profile_id = (select auth.uid()));

drop policy if exists "Legacy thread creators can remove members" on public.chat_thread_members;
create policy "Legacy thread creators can remove members"
on public.chat_thread_members for delete to authenticated
using (private.is_legacy_thread_creator(thread_id));

-- From policies/chat_messages.sql
-- ------------------------------------------------------------------------------------------

-- chat_messages: thread members read and post (as themselves: a trigger refuses impersonation,
-- and a prescription ticket's thread is closed until its prescription is attached); admins read.
-- Messages are not edited or deleted through the API (service_role included: they are kept
-- with their ticket); ids are the database's.

alter table public.chat_messages enable row level security;

revoke all on public.chat_messages from anon, authenticated, service_role;
grant select on public.chat_messages to authenticated;
grant insert (thread_id, sender_id, body, kind, metadata)
on public.chat_messages to authenticated;
grant select, insert, update on public.chat_messages to service_role;

drop policy if exists "Thread members can read messages" on public.chat_messages;
create policy "Thread members can read messages"
on public.chat_messages for select to authenticated
using (
    -- The caller's own membership row (primary key lookup): cheap per row, where an array of
    -- every thread the caller is in would cost per statement what a busy pharmacist has.
    exists (
        select from public.chat_thread_members as m
        where m.thread_id = chat_messages.thread_id and m.profile_id = (select auth.uid())
    )
    or (select private.is_admin())
);

drop policy if exists "Thread members can post messages" on public.chat_messages;
create policy "Thread members can post messages"
on public.chat_messages for insert to authenticated
with check (
    sender_id = (select auth.uid())
    and exists (
        select from public.chat_thread_members as m
        where m.thread_id = chat_messages.thread_id and m.profile_id = (select auth.uid())
    )
);

-- From policies/realtime_messages.sql
-- ------------------------------------------------------------------------------------------

-- Realtime: the ticket tables in the supabase_realtime publication, and Realtime Authorization
-- on realtime.messages: only a ticket's parties join (receive on, send to) its private channel
-- 'ticket:<ticket id>'. Each policy binds the row too: its topic is the channel's, so a party of
-- one ticket never reads or writes another channel's rows. The scheduling tables join the
-- publication with their own policies.

do $publication$
declare
    v_table text;
begin
    foreach v_table in array array[
        'healthcare_tickets', 'chat_threads', 'chat_messages', 'notifications', 'ticket_timeline'
    ] loop
        if not exists (
            select from pg_catalog.pg_publication_tables
            where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = v_table
        ) then
            execute pg_catalog.format(
                'alter publication supabase_realtime add table public.%I', v_table
            );
        end if;
    end loop;
end
$publication$;

drop policy if exists "Ticket parties can receive on ticket channels" on realtime.messages;
create policy "Ticket parties can receive on ticket channels"
on realtime.messages for select to authenticated
using (
    topic = (select realtime.topic())
    and (select private.can_join_ticket_channel((select realtime.topic())))
);

drop policy if exists "Ticket parties can send on ticket channels" on realtime.messages;
create policy "Ticket parties can send on ticket channels"
on realtime.messages for insert to authenticated
with check (
    topic = (select realtime.topic())
    and (select private.can_join_ticket_channel((select realtime.topic())))
);

-- From policies/ticket_timeline.sql
-- ------------------------------------------------------------------------------------------

-- ticket_timeline: written by triggers only, append-only for everyone (service included);
-- a ticket's parties read its timeline. The party test is spelled out on the ticket's columns
-- (the fulfiller from sent_at, see private.fulfiller_is_party) so that it costs one primary-key
-- lookup per row and the caller's providers are worked out once per statement.

alter table public.ticket_timeline enable row level security;

revoke all on public.ticket_timeline from anon, authenticated, service_role;
grant select on public.ticket_timeline to authenticated, service_role;

drop policy if exists "Ticket parties can read the timeline" on public.ticket_timeline;
create policy "Ticket parties can read the timeline"
on public.ticket_timeline for select to authenticated
using (
    exists (
        select from public.healthcare_tickets as t
        where
            t.id = ticket_timeline.ticket_id
            and (
                t.patient_id = (select auth.uid())
                or t.primary_provider_id = any(array(select private.current_provider_ids()))
                or (
                    t.sent_at is not null
                    and t.secondary_provider_id = any(array(select private.current_provider_ids()))
                )
                or (select private.is_admin())
            )
    )
);

-- From policies/prescriptions.sql
-- ------------------------------------------------------------------------------------------

-- prescriptions: the prescribing doctor writes and reads them; the patient reads theirs; the
-- pharmacy reads one once its ticket is sent (sent_at); parties of its ticket and admins read.
-- Clinical fields freeze when sent (trigger); the order id and Rx number stay writable.

alter table public.prescriptions enable row level security;

revoke all on public.prescriptions from anon, authenticated, service_role;
grant select, delete on public.prescriptions to authenticated;
grant insert (
    id, doctor_id, pharmacy_id, patient_id, appointment_id, medications, notes,
    external_order_id, rx_number
) on public.prescriptions to authenticated;
grant update (
    doctor_id, pharmacy_id, patient_id, appointment_id, medications, notes, external_order_id,
    rx_number
) on public.prescriptions to authenticated;
grant select, insert, update, delete on public.prescriptions to service_role;

drop policy if exists "Prescription parties can read prescriptions" on public.prescriptions;
create policy "Prescription parties can read prescriptions"
on public.prescriptions for select to authenticated
using (
    doctor_id = (select auth.uid())
    or patient_id = (select auth.uid())
    or (sent_at is not null and pharmacy_id = any(array(select private.current_provider_ids())))
    or (select private.is_admin())
    or exists (
        -- Parties of its ticket; its fulfiller once the ticket was sent (sent_at).
        select from public.healthcare_tickets as t
        where
            t.prescription_id = prescriptions.id
            and (
                t.patient_id = (select auth.uid())
                or t.primary_provider_id = any(array(select private.current_provider_ids()))
                or (
                    t.sent_at is not null
                    and t.secondary_provider_id = any(array(select private.current_provider_ids()))
                )
            )
    )
);

drop policy if exists "Doctors can write prescriptions" on public.prescriptions;
create policy "Doctors can write prescriptions"
on public.prescriptions for insert to authenticated
with check (doctor_id = (select auth.uid()) and (select private.caller_can_prescribe()));

drop policy if exists "Prescribing doctors can update prescriptions" on public.prescriptions;
create policy "Prescribing doctors can update prescriptions"
on public.prescriptions for update to authenticated
using (doctor_id = (select auth.uid()))
with check (doctor_id = (select auth.uid()) and (select private.caller_can_prescribe()));

drop policy if exists "Prescribing doctors can delete unsent prescriptions"
on public.prescriptions;
create policy "Prescribing doctors can delete unsent prescriptions"
on public.prescriptions for delete to authenticated
using (doctor_id = (select auth.uid()) and sent_at is null);

-- From policies/prescription_items.sql
-- ------------------------------------------------------------------------------------------

-- prescription_items: readable by whoever reads the prescription; written by its doctor until
-- it is sent (then frozen by trigger, CH007). Each policy looks its prescription up under the
-- prescriptions policies, so "who reads the prescription" is written once.

alter table public.prescription_items enable row level security;

revoke all on public.prescription_items from anon, authenticated, service_role;
grant select, insert, update, delete on public.prescription_items to authenticated;
grant select, insert, update, delete on public.prescription_items to service_role;

drop policy if exists "Prescription readers can read items" on public.prescription_items;
create policy "Prescription readers can read items"
on public.prescription_items for select to authenticated
using (
    exists (
        select from public.prescriptions as rx
        where rx.id = prescription_items.prescription_id
    )
);

drop policy if exists "Prescribing doctors can add items" on public.prescription_items;
create policy "Prescribing doctors can add items"
on public.prescription_items for insert to authenticated
with check (exists (
    select from public.prescriptions as rx
    where rx.id = prescription_items.prescription_id and rx.doctor_id = (select auth.uid())
));

drop policy if exists "Prescribing doctors can update items" on public.prescription_items;
create policy "Prescribing doctors can update items"
on public.prescription_items for update to authenticated
using (exists (
    select from public.prescriptions as rx
    where rx.id = prescription_items.prescription_id and rx.doctor_id = (select auth.uid())
))
with check (exists (
    select from public.prescriptions as rx
    where rx.id = prescription_items.prescription_id and rx.doctor_id = (select auth.uid())
));

drop policy if exists "Prescribing doctors can remove items" on public.prescription_items;
create policy "Prescribing doctors can remove items"
on public.prescription_items for delete to authenticated
using (exists (
    select from public.prescriptions as rx
    where rx.id = prescription_items.prescription_id and rx.doctor_id = (select auth.uid())
));

-- Replaced by private.fulfiller_is_party(sent_at): the status alone cannot tell a draft
-- cancelled before sending from a ticket cancelled after it.
drop function private.secondary_sees_ticket(text, text);
