-- Ticket behaviour: the functions, triggers, RLS policies, grants and Realtime settings of the
-- ticket core, exactly as in functions-sql/ (tickets_*.sql, prescriptions.sql) and policies/.

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

-- From functions-sql/tickets_status.sql
-- ------------------------------------------------------------------------------------------

-- Ticket rules checked before a row is written: a new ticket's initial status and creator,
-- status transitions per actor from ticket_status_transitions (CH001), columns an actor may not
-- change (CH007), the fulfiller's kind and the prescription a ticket links to (CH004).

-- Why prescription p_prescription_id cannot be linked to a ticket with these parties, or null
-- when it can: it must be written by a member of the primary provider, for the same patient,
-- to the same pharmacy.
create or replace function private.prescription_link_problem(
    p_prescription_id uuid,
    p_patient_id uuid,
    p_primary_provider_id uuid,
    p_secondary_provider_id uuid
)
returns text
language sql stable
security definer
set search_path = ''
as $fn$
    select case
        when rx.id is null then pg_catalog.format('prescription %s does not exist', p_prescription_id)
        when rx.patient_id is distinct from p_patient_id then pg_catalog.format(
            'prescription %s is for another patient than this ticket''s', rx.id
        )
        when rx.pharmacy_id is distinct from p_secondary_provider_id then pg_catalog.format(
            'prescription %s is addressed to another pharmacy than this ticket''s', rx.id
        )
        when not exists (
            select from public.provider_members as m
            where m.provider_id = p_primary_provider_id and m.profile_id = rx.doctor_id
        ) then pg_catalog.format(
            'prescription %s was not written by a member of the requesting provider', rx.id
        )
    end
    from (select p_prescription_id as wanted) as w
    left join public.prescriptions as rx on w.wanted = rx.id
$fn$;

-- Checks a fulfiller is of the kind the ticket needs (23514) and a linked prescription fits
-- the ticket (CH004). Shared by the insert and update triggers.
create or replace function private.check_ticket_links(p_ticket public.healthcare_tickets)
returns void
language plpgsql stable
security definer
set search_path = ''
as $fn$
declare
    v_kind text;
    v_problem text;
begin
    if p_ticket.secondary_provider_id is not null then
        select p.kind into v_kind from public.providers as p
        where p.id = p_ticket.secondary_provider_id;
        if v_kind is distinct from p_ticket.required_provider_kind then
            raise exception 'provider % is a %, but this % ticket needs a %',
                p_ticket.secondary_provider_id, coalesce(v_kind, 'missing provider'),
                p_ticket.ticket_type, p_ticket.required_provider_kind
                using errcode = '23514',
                hint = 'Choose a provider of kind ' || p_ticket.required_provider_kind || '.';
        end if;
    end if;
    if p_ticket.prescription_id is not null then
        v_problem := private.prescription_link_problem(
            p_ticket.prescription_id, p_ticket.patient_id, p_ticket.primary_provider_id,
            p_ticket.secondary_provider_id
        );
        if v_problem is not null then
            raise exception 'ticket %: % (CH004)', p_ticket.id, v_problem
                using errcode = 'CH004',
                hint = 'Link a prescription the requesting doctor wrote for this patient and '
                || 'this pharmacy.';
        end if;
    end if;
end
$fn$;

-- Before insert: the status starts at the type's initial status, the creator is the caller and
-- the required provider kind defaults to the type's fulfiller. The system (backfill, service)
-- may insert a ticket at any status.
create or replace function private.set_ticket_defaults()
returns trigger
language plpgsql
set search_path = ''
as $fn$
declare
    v_type public.ticket_types;
begin
    select * into v_type from public.ticket_types where ticket_type = new.ticket_type;
    if not found then
        return new;  -- the foreign key names the unknown type
    end if;
    new.required_provider_kind := coalesce(new.required_provider_kind, v_type.fulfiller_kind);
    if private.is_system_actor() then
        new.status := coalesce(new.status, v_type.initial_status);
        new.created_by := coalesce(new.created_by, (select auth.uid()));
    else
        if new.status is distinct from v_type.initial_status and new.status is not null then
            raise exception 'a new % ticket starts as ''%'', not ''%'' (CH001)',
                new.ticket_type, v_type.initial_status, new.status
                using errcode = 'CH001',
                hint = 'Leave status out; move the ticket on once it exists.';
        end if;
        if new.created_by is distinct from (select auth.uid()) and new.created_by is not null then
            raise exception 'created_by must be your own user id (CH008)'
                using errcode = 'CH008', hint = 'Leave created_by out; it is set for you.';
        end if;
        new.status := v_type.initial_status;
        new.created_by := (select auth.uid());
    end if;
    if v_type.initial_status <> new.status and new.closed_at is null and exists (
        select from public.ticket_statuses as s
        where s.ticket_type = new.ticket_type and s.status = new.status and s.is_terminal
    ) then
        new.closed_at := pg_catalog.now();
    end if;
    perform private.check_ticket_links(new);
    return new;
end
$fn$;

-- Before update: what the acting party may change. System sessions may change any column and
-- move the status forward (skipping steps); nobody moves it back or out of a terminal status.
create or replace function private.enforce_ticket_update()
returns trigger
language plpgsql
set search_path = ''
as $fn$
declare
    v_system boolean := private.is_system_actor();
    v_type public.ticket_types;
    v_from public.ticket_statuses;
    v_to public.ticket_statuses;
    v_roles text[];
    v_changed text[];
    v_protected text[];
    v_allowed text;
begin
    select * into v_type from public.ticket_types where ticket_type = old.ticket_type;
    select array_agg(n.key order by n.key) into v_changed
    from pg_catalog.jsonb_each(pg_catalog.to_jsonb(new)) as n
    inner join pg_catalog.jsonb_each(pg_catalog.to_jsonb(old)) as o on n.key = o.key
    where n.value is distinct from o.value and n.key <> 'updated_at';
    v_changed := coalesce(v_changed, '{}');

    if not v_system then
        v_roles := private.caller_ticket_roles(
            old.ticket_type, old.status, old.patient_id, old.primary_provider_id,
            old.secondary_provider_id
        );
        v_protected := array(
            select c from pg_catalog.unnest(v_changed) as c
            where c in (
                'ticket_type', 'patient_id', 'primary_provider_id', 'created_by',
                'required_provider_kind', 'appointment_id'
            )
        );
        if pg_catalog.cardinality(v_protected) > 0 then
            raise exception 'ticket %: % may not be changed by this actor (CH007)',
                old.id, pg_catalog.array_to_string(v_protected, ', ')
                using errcode = 'CH007',
                hint = 'Create a new ticket instead of changing who or what it is about.';
        end if;
        if 'secondary_provider_id' = any(v_changed) and (
            old.status <> v_type.initial_status or not v_roles && array['patient', 'primary', 'admin']
        ) then
            raise exception
                'ticket %: the fulfiller can be chosen only by the requester while the ticket '
                'is ''%'' (it is ''%'') (CH007)', old.id, v_type.initial_status, old.status
                using errcode = 'CH007',
                hint = 'Open tickets are taken with claim_ticket(ticket_id, provider_id).';
        end if;
        if 'prescription_id' = any(v_changed) and (
            old.status <> v_type.initial_status or not v_roles && array['primary']
        ) then
            raise exception
                'ticket %: only the prescribing provider links a prescription, before the ticket '
                'is sent (CH007)', old.id
                using errcode = 'CH007',
                hint = 'Cancel this ticket and create a new one to send another prescription.';
        end if;
    end if;

    if new.status is distinct from old.status then
        select * into v_from from public.ticket_statuses
        where ticket_type = old.ticket_type and status = old.status;
        select * into v_to from public.ticket_statuses
        where ticket_type = old.ticket_type and status = new.status;
        if v_to.status is null then
            raise exception 'ticket %: ''%'' is not a status of % tickets (CH001)',
                old.id, new.status, old.ticket_type
                using errcode = 'CH001',
                hint = 'See ticket_statuses for the statuses of each ticket type.';
        end if;
        if v_from.is_terminal then
            raise exception 'ticket % is ''%'', which is final; it cannot become ''%'' (CH001)',
                old.id, old.status, new.status
                using errcode = 'CH001', hint = 'Create a new ticket for further work.';
        end if;
        if v_system then
            if v_to.rank <= v_from.rank and not exists (
                select from public.ticket_status_transitions as tr
                where
                    tr.ticket_type = old.ticket_type
                    and tr.from_status = old.status
                    and tr.to_status = new.status
            ) then
                raise exception 'ticket %: cannot move back from ''%'' to ''%'' (CH001)',
                    old.id, old.status, new.status
                    using errcode = 'CH001',
                    hint = 'Statuses only move forward; see ticket_statuses.rank.';
            end if;
        elsif not exists (
            select from public.ticket_status_transitions as tr
            where
                tr.ticket_type = old.ticket_type
                and tr.from_status = old.status
                and tr.to_status = new.status
                and tr.actor = any(v_roles)
        ) then
            select pg_catalog.string_agg(distinct pg_catalog.quote_literal(tr.to_status), ', ')
            into v_allowed
            from public.ticket_status_transitions as tr
            where
                tr.ticket_type = old.ticket_type
                and tr.from_status = old.status
                and tr.actor = any(v_roles);
            raise exception 'ticket %: you (%) cannot move a % ticket from ''%'' to ''%'' (CH001)',
                old.id, coalesce(nullif(pg_catalog.array_to_string(v_roles, ', '), ''), 'no party'),
                old.ticket_type, old.status, new.status
                using errcode = 'CH001',
                hint = coalesce('From here you may move it to ' || v_allowed || '.',
                    'You have no status change to make on this ticket now.');
        end if;
        if new.ticket_type = 'counseling' and new.status = 'scheduled' and (
            new.scheduled_time is null
            or (new.session_mode in ('video', 'audio') and new.meeting_link is null)
        ) then
            raise exception 'ticket %: a counselling session is scheduled with its time%',
                old.id, case when new.session_mode in ('video', 'audio')
                    then ' and meeting link' else '' end
                using errcode = '23514',
                hint = 'Set scheduled_time (and meeting_link for video or audio sessions) '
                || 'in the same update.';
        end if;
        if new.ticket_type = 'prescription' and new.prescription_id is null
            and new.status not in ('created', 'cancelled') then
            raise exception 'ticket % is ''%''; attach a prescription before moving it to ''%'' (CH004)',
                old.id, old.status, new.status
                using errcode = 'CH004',
                hint = 'Set prescription_id in the same update as the status.';
        end if;
        if v_to.is_terminal then
            new.closed_at := pg_catalog.now();
        end if;
    end if;

    if v_changed && array[
        'secondary_provider_id', 'prescription_id', 'patient_id', 'primary_provider_id',
        'required_provider_kind'
    ] then
        perform private.check_ticket_links(new);
    end if;
    new.updated_at := pg_catalog.now();
    return new;
end
$fn$;

revoke execute on function private.prescription_link_problem(uuid, uuid, uuid, uuid) from public;
revoke execute on function private.check_ticket_links(public.healthcare_tickets) from public;
revoke execute on function private.set_ticket_defaults() from public;
revoke execute on function private.enforce_ticket_update() from public;
grant execute on function private.check_ticket_links(
    public.healthcare_tickets
) to authenticated, service_role;

drop trigger if exists set_ticket_defaults on public.healthcare_tickets;
create trigger set_ticket_defaults
before insert on public.healthcare_tickets
for each row execute function private.set_ticket_defaults();

drop trigger if exists enforce_ticket_update on public.healthcare_tickets;
create trigger enforce_ticket_update
before update on public.healthcare_tickets
for each row execute function private.enforce_ticket_update();

-- From functions-sql/tickets_timeline.sql
-- ------------------------------------------------------------------------------------------

-- Ticket timeline: one row per change of a ticket, written by triggers only, append-only for
-- everyone (the service included). source comes from app.source (see private.request_source).

-- The kind of actor the caller is on a ticket, for the record: system when no user is signed
-- in; otherwise the role that allowed the change (a status change: the role whose transition
-- it is), else the caller's first role on the ticket.
create or replace function private.timeline_actor_kind(
    p_old public.healthcare_tickets, p_new public.healthcare_tickets
)
returns text
language sql stable
security definer
set search_path = ''
as $fn$
    select coalesce(
        case when (select auth.uid()) is not null then (
            select r.role
            from pg_catalog.unnest(
                private.caller_ticket_roles(
                    p_new.ticket_type, p_new.status, p_new.patient_id,
                    p_new.primary_provider_id, p_new.secondary_provider_id
                )
                || private.caller_ticket_roles(
                    p_old.ticket_type, p_old.status, p_old.patient_id,
                    p_old.primary_provider_id, p_old.secondary_provider_id
                )
            ) with ordinality as r (role, n)
            order by
                exists (
                    select from public.ticket_status_transitions as tr
                    where
                        tr.ticket_type = p_new.ticket_type
                        and tr.from_status = p_old.status
                        and tr.to_status = p_new.status
                        and tr.actor = r.role
                ) desc,
                r.n
            limit 1
        ) end,
        'system'
    )
$fn$;

create or replace function private.record_ticket_created()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_source text := private.request_source();
begin
    insert into public.ticket_timeline (
        ticket_id, event_type, to_status, actor_id, actor_kind, source, details
    )
    values (
        new.id,
        case when v_source = 'backfill' then 'backfilled' else 'created' end,
        new.status,
        (select auth.uid()),
        private.timeline_actor_kind(new, new),
        v_source,
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'ticket_type', new.ticket_type,
            'secondary_provider_id', new.secondary_provider_id,
            'prescription_id', new.prescription_id,
            'legacy_thread_id', new.legacy_thread_id
        ))
    );
    return null;
end
$fn$;

-- One row per kind of change an update makes: the status (or claim), the fulfiller, the
-- prescription; other columns changed are listed in the status row's details, or, without a
-- status change, in one 'updated' row.
create or replace function private.record_ticket_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_source text := private.request_source();
    v_actor uuid := (select auth.uid());
    v_kind text := private.timeline_actor_kind(old, new);
    v_claimed_status text;
    v_other text[];
begin
    select tt.claimed_status into v_claimed_status
    from public.ticket_types as tt where tt.ticket_type = new.ticket_type;

    select array_agg(n.key order by n.key) into v_other
    from pg_catalog.jsonb_each(pg_catalog.to_jsonb(new)) as n
    inner join pg_catalog.jsonb_each(pg_catalog.to_jsonb(old)) as o on n.key = o.key
    where
        n.value is distinct from o.value
        and n.key not in (
            'updated_at', 'status', 'secondary_provider_id', 'prescription_id', 'claimed_at',
            'closed_at'
        );
    if new.status is distinct from old.status then
        insert into public.ticket_timeline (
            ticket_id, event_type, from_status, to_status, actor_id, actor_kind, source, details
        )
        values (
            new.id,
            case
                when old.secondary_provider_id is null and new.secondary_provider_id is not null
                    and new.status = v_claimed_status then 'claimed'
                else 'status_changed'
            end,
            old.status, new.status, v_actor, v_kind, v_source,
            pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                'secondary_provider_id',
                case when new.secondary_provider_id is distinct from old.secondary_provider_id
                    then new.secondary_provider_id end,
                'columns', pg_catalog.to_jsonb(v_other)
            ))
        );
    elsif new.secondary_provider_id is distinct from old.secondary_provider_id then
        insert into public.ticket_timeline (
            ticket_id, event_type, from_status, to_status, actor_id, actor_kind, source, details
        )
        values (
            new.id, 'assigned', old.status, new.status, v_actor, v_kind, v_source,
            pg_catalog.jsonb_build_object(
                'from_provider_id', old.secondary_provider_id,
                'to_provider_id', new.secondary_provider_id
            )
        );
    end if;

    if new.status is distinct from old.status
        and new.secondary_provider_id is distinct from old.secondary_provider_id
        and not (old.secondary_provider_id is null and new.status = v_claimed_status) then
        insert into public.ticket_timeline (
            ticket_id, event_type, from_status, to_status, actor_id, actor_kind, source, details
        )
        values (
            new.id, 'assigned', new.status, new.status, v_actor, v_kind, v_source,
            pg_catalog.jsonb_build_object(
                'from_provider_id', old.secondary_provider_id,
                'to_provider_id', new.secondary_provider_id
            )
        );
    end if;

    if new.prescription_id is distinct from old.prescription_id then
        insert into public.ticket_timeline (
            ticket_id, event_type, from_status, to_status, actor_id, actor_kind, source, details
        )
        values (
            new.id, 'prescription_linked', old.status, new.status, v_actor, v_kind, v_source,
            pg_catalog.jsonb_build_object('prescription_id', new.prescription_id)
        );
    end if;

    if v_other is not null and new.status is not distinct from old.status then
        insert into public.ticket_timeline (
            ticket_id, event_type, from_status, to_status, actor_id, actor_kind, source, details
        )
        values (
            new.id, 'updated', old.status, new.status, v_actor, v_kind, v_source,
            pg_catalog.jsonb_build_object('columns', pg_catalog.to_jsonb(v_other))
        );
    end if;
    return null;
end
$fn$;

-- The timeline is history: no one rewrites or removes it. Rows go only with their ticket (the
-- cascade of a ticket's deletion runs this trigger one level down).
create or replace function private.forbid_timeline_changes()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    if tg_op = 'DELETE' and pg_catalog.pg_trigger_depth() > 1 then
        return old;
    end if;
    raise exception 'ticket_timeline is append-only: rows cannot be %d', pg_catalog.lower(tg_op)
        using errcode = '42501',
        hint = 'The timeline records what happened; make a new change to the ticket instead.';
end
$fn$;

revoke execute on function private.timeline_actor_kind(
    public.healthcare_tickets, public.healthcare_tickets
) from public;
revoke execute on function private.record_ticket_created() from public;
revoke execute on function private.record_ticket_changed() from public;
revoke execute on function private.forbid_timeline_changes() from public;

drop trigger if exists record_ticket_created on public.healthcare_tickets;
create trigger record_ticket_created
after insert on public.healthcare_tickets
for each row execute function private.record_ticket_created();

drop trigger if exists record_ticket_changed on public.healthcare_tickets;
create trigger record_ticket_changed
after update on public.healthcare_tickets
for each row execute function private.record_ticket_changed();

drop trigger if exists forbid_timeline_changes on public.ticket_timeline;
create trigger forbid_timeline_changes
before update or delete on public.ticket_timeline
for each row execute function private.forbid_timeline_changes();

drop trigger if exists forbid_timeline_truncate on public.ticket_timeline;
create trigger forbid_timeline_truncate
before truncate on public.ticket_timeline
for each statement execute function private.forbid_timeline_changes();

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
-- once it may see the ticket. Set-based, so a staff change at a large provider is one
-- statement.
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
                and private.secondary_sees_ticket(t.ticket_type, t.status)
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
        or private.secondary_sees_ticket(new.ticket_type, new.status)
        <> private.secondary_sees_ticket(old.ticket_type, old.status) then
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
                    or not private.secondary_sees_ticket(new.ticket_type, new.status)
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

revoke execute on function private.notify(uuid[], uuid, text, text, text, jsonb) from public;
revoke execute on function private.provider_member_ids(uuid) from public;
revoke execute on function private.claim_pool_member_ids(text, text) from public;
revoke execute on function private.crisis_responder_ids() from public;
revoke execute on function private.ticket_label(public.healthcare_tickets) from public;
revoke execute on function private.notify_ticket_created() from public;
revoke execute on function private.notify_ticket_changed() from public;
revoke execute on function private.notify_chat_message() from public;

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

-- From functions-sql/tickets_claiming.sql
-- ------------------------------------------------------------------------------------------

-- Claiming: a provider takes an open ticket (no fulfiller yet, at its type's claimable status).
-- Exactly one of any number of concurrent claims wins.

-- claim_ticket(p_ticket_id, p_provider_id): the caller, acting for provider p_provider_id,
-- takes open ticket p_ticket_id. Returns the claimed ticket (secondary_provider_id set, status
-- at the type's claimed status, claimed_at set).
-- Raises 42501 when no user is signed in; CH008 when the caller does not act for the provider,
-- or the ticket is unknown or not one that provider may take (kind, expertise); CH003 when the
-- ticket has been claimed already or is no longer open.
create or replace function public.claim_ticket(p_ticket_id uuid, p_provider_id uuid)
returns public.healthcare_tickets
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket public.healthcare_tickets;
    v_type public.ticket_types;
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
    if not found or not private.provider_can_claim(
        p_provider_id, v_ticket.required_provider_kind, v_ticket.category
    ) then
        raise exception 'ticket % is not one provider % may claim (CH008)',
            p_ticket_id, p_provider_id
            using errcode = 'CH008',
            hint = 'Claim open tickets needing your kind of provider and expertise.';
    end if;
    select * into v_type from public.ticket_types where ticket_type = v_ticket.ticket_type;
    if v_ticket.secondary_provider_id is not null then
        raise exception 'ticket % has already been claimed (CH003)', p_ticket_id
            using errcode = 'CH003', hint = 'Pick another open ticket.';
    end if;
    if v_type.claimable_status is distinct from v_ticket.status then
        raise exception 'ticket % is ''%'' and no longer open for claiming (CH003)',
            p_ticket_id, v_ticket.status
            using errcode = 'CH003', hint = 'Pick another open ticket.';
    end if;
    update public.healthcare_tickets as t
    set
        secondary_provider_id = p_provider_id,
        status = v_type.claimed_status,
        claimed_at = pg_catalog.now()
    where t.id = p_ticket_id
    returning t.* into v_ticket;
    return v_ticket;
end
$fn$;

revoke execute on function public.claim_ticket(uuid, uuid) from public, anon;
grant execute on function public.claim_ticket(uuid, uuid) to authenticated, service_role;

-- From functions-sql/prescriptions.sql
-- ------------------------------------------------------------------------------------------

-- Prescriptions: the doctor's entry point (get_or_create_prescription_ticket), clinical fields
-- frozen once the prescription's ticket is sent, and sent_at, which opens it to the pharmacy.

-- get_or_create_prescription_ticket(p_appointment_id, p_pharmacy_id): the live prescription
-- ticket of this appointment for this pharmacy, created (with its thread) when there is none.
-- The patient is the reservation's, the requester is the practitioner's doctor or clinic
-- provider. Idempotent, also under concurrent calls. Its thread: chat_threads.ticket_id.
-- Raises 42501 when no user is signed in; P0002 when the appointment does not exist; CH008
-- when the caller does not act for the practitioner's provider, the practitioner has no doctor
-- or clinic provider, or p_pharmacy_id is not an active pharmacy.
create or replace function public.get_or_create_prescription_ticket(
    p_appointment_id uuid, p_pharmacy_id uuid
)
returns public.healthcare_tickets
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_reservation public.reservation;
    v_primary_provider_id uuid;
    v_ticket public.healthcare_tickets;
begin
    if private.is_api_request() and (select auth.uid()) is null then
        raise exception 'sign in to create prescription tickets'
            using errcode = '42501', hint = 'Call this as the signed-in doctor.';
    end if;
    select r.* into v_reservation from public.reservation as r where r.id = p_appointment_id;
    if not found then
        raise exception 'appointment % does not exist', p_appointment_id
            using errcode = 'P0002', hint = 'Pass the id of a reservation.';
    end if;
    -- The practitioner's provider; with several, one the caller also acts for.
    select m.provider_id into v_primary_provider_id
    from public.provider_members as m
    inner join public.providers as p on m.provider_id = p.id
    where m.profile_id = v_reservation.profile_id and p.kind in ('doctor', 'clinic')
    order by private.is_provider_member(m.provider_id) desc, p.kind = 'doctor' desc, m.created_at
    limit 1;
    if v_primary_provider_id is null then
        raise exception 'practitioner % acts for no doctor or clinic provider (CH008)',
            v_reservation.profile_id
            using errcode = 'CH008', hint = 'Add the practitioner to their practice first.';
    end if;
    if private.is_api_request() and not private.is_provider_member(v_primary_provider_id) then
        raise exception 'you do not act for the practitioner of appointment % (CH008)',
            p_appointment_id
            using errcode = 'CH008',
            hint = 'Only the practitioner''s practice creates its prescription tickets.';
    end if;
    if not exists (
        select from public.providers as p
        where p.id = p_pharmacy_id and p.kind = 'pharmacy' and p.is_active
    ) then
        raise exception 'provider % is not an active pharmacy (CH008)', p_pharmacy_id
            using errcode = 'CH008', hint = 'Choose an active pharmacy.';
    end if;
    -- Concurrent calls for one appointment and pharmacy queue here; each then sees the ticket
    -- the first one committed (a new snapshot per statement).
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
        'prescription_ticket:' || p_appointment_id::text || ':' || p_pharmacy_id::text, 0
    ));
    select t.* into v_ticket from public.healthcare_tickets as t
    where
        t.appointment_id = p_appointment_id
        and t.secondary_provider_id = p_pharmacy_id
        and t.ticket_type = 'prescription'
        and t.status not in ('cancelled', 'failed')
    order by t.created_at
    limit 1;
    if found then
        return v_ticket;
    end if;
    insert into public.healthcare_tickets (
        ticket_type, patient_id, primary_provider_id, secondary_provider_id, appointment_id,
        title
    )
    values (
        'prescription', v_reservation.patient_id, v_primary_provider_id, p_pharmacy_id,
        p_appointment_id, 'Prescription for ' || v_reservation.patient_name
    )
    returning * into v_ticket;
    return v_ticket;
end
$fn$;

-- Clinical fields are frozen once the prescription's ticket is sent (CH007). The pharmacy's
-- order id and Rx number stay writable; sent_at is set once, by the ticket.
create or replace function private.freeze_sent_prescription()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    if old.sent_at is not null and (
        new.doctor_id is distinct from old.doctor_id
        or new.pharmacy_id is distinct from old.pharmacy_id
        or new.patient_id is distinct from old.patient_id
        or new.appointment_id is distinct from old.appointment_id
        or new.medications is distinct from old.medications
        or new.notes is distinct from old.notes
        or new.sent_at is distinct from old.sent_at
    ) then
        raise exception 'prescription % was sent on %; its clinical fields are frozen (CH007)',
            old.id, old.sent_at
            using errcode = 'CH007',
            hint = 'Cancel the ticket and write a new prescription to change it.';
    end if;
    new.updated_at := pg_catalog.now();
    return new;
end
$fn$;

create or replace function private.freeze_sent_prescription_items()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_sent_at timestamptz;
begin
    select rx.sent_at into v_sent_at from public.prescriptions as rx
    where rx.id in (
        case when tg_op <> 'INSERT' then old.prescription_id end,
        case when tg_op <> 'DELETE' then new.prescription_id end
    ) and rx.sent_at is not null
    limit 1;
    -- Anyone but the prescribing doctor is refused by RLS; they learn nothing from this.
    if v_sent_at is not null and (
        not private.is_api_request()
        or private.is_prescribing_doctor(
            case when tg_op = 'DELETE' then old.prescription_id else new.prescription_id end
        )
    ) then
        raise exception 'the prescription was sent on %; its items are frozen (CH007)', v_sent_at
            using errcode = 'CH007',
            hint = 'Cancel the ticket and write a new prescription to change it.';
    end if;
    return case when tg_op = 'DELETE' then old else new end;
end
$fn$;

-- When a prescription ticket leaves 'created' for good (sent, or skipped further by the
-- system), its prescription is sent: frozen, and readable by the pharmacy.
create or replace function private.mark_prescription_sent()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if new.ticket_type = 'prescription' and new.prescription_id is not null
        and new.status not in ('created', 'cancelled') then
        update public.prescriptions as rx
        set sent_at = pg_catalog.now()
        where rx.id = new.prescription_id and rx.sent_at is null;
    end if;
    return null;
end
$fn$;

-- Whether the caller is a party to the ticket prescription p_prescription_id is linked to.
create or replace function private.is_prescription_ticket_party(p_prescription_id uuid)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.healthcare_tickets as t
        where
            t.prescription_id = p_prescription_id
            and pg_catalog.cardinality(private.caller_ticket_roles(
                t.ticket_type, t.status, t.patient_id, t.primary_provider_id,
                t.secondary_provider_id
            )) > 0
    )
$fn$;

-- Whether the caller may read prescription p_prescription_id (for its items): as its doctor,
-- its patient, its pharmacy once sent, an admin, or a party to its ticket.
create or replace function private.can_read_prescription(p_prescription_id uuid)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.prescriptions as rx
        where
            rx.id = p_prescription_id
            and (
                rx.doctor_id = (select auth.uid())
                or rx.patient_id = (select auth.uid())
                or (rx.sent_at is not null and private.is_provider_member(rx.pharmacy_id))
                or private.is_admin()
                or private.is_prescription_ticket_party(rx.id)
            )
    )
$fn$;

-- Whether the caller wrote prescription p_prescription_id.
create or replace function private.is_prescribing_doctor(p_prescription_id uuid)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.prescriptions as rx
        where rx.id = p_prescription_id and rx.doctor_id = (select auth.uid())
    )
$fn$;

revoke execute on function public.get_or_create_prescription_ticket(uuid, uuid)
from public, anon;
grant execute on function public.get_or_create_prescription_ticket(uuid, uuid)
to authenticated, service_role;
revoke execute on function private.freeze_sent_prescription() from public;
revoke execute on function private.freeze_sent_prescription_items() from public;
revoke execute on function private.mark_prescription_sent() from public;
revoke execute on function private.can_read_prescription(uuid) from public;
revoke execute on function private.is_prescription_ticket_party(uuid) from public;
revoke execute on function private.is_prescribing_doctor(uuid) from public;
grant execute on function private.can_read_prescription(uuid) to authenticated, service_role;
grant execute on function private.is_prescription_ticket_party(uuid) to authenticated, service_role;
grant execute on function private.is_prescribing_doctor(uuid) to authenticated, service_role;

drop trigger if exists freeze_sent_prescription on public.prescriptions;
create trigger freeze_sent_prescription
before update on public.prescriptions
for each row execute function private.freeze_sent_prescription();

drop trigger if exists freeze_sent_prescription_items on public.prescription_items;
create trigger freeze_sent_prescription_items
before insert or update or delete on public.prescription_items
for each row execute function private.freeze_sent_prescription_items();

drop trigger if exists mark_prescription_sent on public.healthcare_tickets;
create trigger mark_prescription_sent
after insert or update on public.healthcare_tickets
for each row execute function private.mark_prescription_sent();

-- From policies/ticket_types.sql
-- ------------------------------------------------------------------------------------------

-- ticket_types: part of the ticket state machines, which are data seeded by migrations. Every
-- signed-in user reads them (a frontend shows the allowed actions); nobody changes them
-- through the API.

alter table public.ticket_types enable row level security;

revoke all on public.ticket_types from anon, authenticated, service_role;
grant select on public.ticket_types to authenticated, service_role;

drop policy if exists "Signed-in users can read ticket types" on public.ticket_types;
create policy "Signed-in users can read ticket types"
on public.ticket_types for select to authenticated
using (true);

-- From policies/ticket_statuses.sql
-- ------------------------------------------------------------------------------------------

-- ticket_statuses: part of the ticket state machines, which are data seeded by migrations. Every
-- signed-in user reads them (a frontend shows the allowed actions); nobody changes them
-- through the API.

alter table public.ticket_statuses enable row level security;

revoke all on public.ticket_statuses from anon, authenticated, service_role;
grant select on public.ticket_statuses to authenticated, service_role;

drop policy if exists "Signed-in users can read ticket statuses" on public.ticket_statuses;
create policy "Signed-in users can read ticket statuses"
on public.ticket_statuses for select to authenticated
using (true);

-- From policies/ticket_status_transitions.sql
-- ------------------------------------------------------------------------------------------

-- ticket_status_transitions: part of the ticket state machines, which are data seeded by
-- migrations. Every signed-in user reads them (a frontend shows the allowed actions); nobody
-- changes them through the API.

alter table public.ticket_status_transitions enable row level security;

revoke all on public.ticket_status_transitions from anon, authenticated, service_role;
grant select on public.ticket_status_transitions to authenticated, service_role;

drop policy if exists "Signed-in users can read status transitions"
on public.ticket_status_transitions;
create policy "Signed-in users can read status transitions"
on public.ticket_status_transitions for select to authenticated
using (true);

-- From policies/healthcare_tickets.sql
-- ------------------------------------------------------------------------------------------

-- healthcare_tickets: parties (patient, members of the primary and secondary providers, admins)
-- read and update their tickets; the fulfiller of a prescription ticket sees nothing of it while
-- it is 'created'; open tickets are shown to the providers that may claim them. Policies judge a
-- row from its own columns, so `insert ... returning` works for its creator. Which changes an
-- actor may make is enforced by triggers (functions-sql/tickets_status.sql); nobody deletes.

alter table public.healthcare_tickets enable row level security;

revoke all on public.healthcare_tickets from anon, authenticated, service_role;
grant select on public.healthcare_tickets to authenticated;
grant insert (
    id, ticket_type, status, patient_id, primary_provider_id, secondary_provider_id,
    required_provider_kind, appointment_id, prescription_id, title, description, category,
    urgency, session_mode, scheduled_time, meeting_link, created_by, metadata
) on public.healthcare_tickets to authenticated;
-- The ticket's identity columns are granted so that changing them fails with a domain error
-- (CH007) that says why; bookkeeping columns are not granted at all.
grant update (
    ticket_type, status, patient_id, primary_provider_id, secondary_provider_id,
    required_provider_kind, appointment_id, prescription_id, title, description, category,
    urgency, session_mode, scheduled_time, meeting_link, created_by, metadata
) on public.healthcare_tickets to authenticated;
grant select, insert, update, delete on public.healthcare_tickets to service_role;

drop policy if exists "Ticket parties can read tickets" on public.healthcare_tickets;
create policy "Ticket parties can read tickets"
on public.healthcare_tickets for select to authenticated
using (
    patient_id = (select auth.uid())
    or primary_provider_id = any(array(select private.current_provider_ids()))
    or (
        secondary_provider_id = any(array(select private.current_provider_ids()))
        -- private.secondary_sees_ticket(), spelt out: a function with a search_path setting is
        -- never inlined, and this runs for every row.
        and not (ticket_type = 'prescription' and status = 'created')
    )
    or (select private.is_admin())
);

drop policy if exists "Eligible claimers can read open tickets" on public.healthcare_tickets;
create policy "Eligible claimers can read open tickets"
on public.healthcare_tickets for select to authenticated
using (
    secondary_provider_id is null
    and required_provider_kind = any(array(select private.current_provider_kinds()))
    and private.caller_can_claim(ticket_type, status, required_provider_kind, category)
);

drop policy if exists "Requesters and patients can create tickets" on public.healthcare_tickets;
create policy "Requesters and patients can create tickets"
on public.healthcare_tickets for insert to authenticated
with check (
    primary_provider_id = any(array(select private.current_provider_ids()))
    or (
        patient_id = (select auth.uid())
        and primary_provider_id is null
        and ticket_type in ('consultation', 'counseling')
    )
);

drop policy if exists "Ticket parties can update tickets" on public.healthcare_tickets;
create policy "Ticket parties can update tickets"
on public.healthcare_tickets for update to authenticated
using (
    patient_id = (select auth.uid())
    or primary_provider_id = any(array(select private.current_provider_ids()))
    or (
        secondary_provider_id = any(array(select private.current_provider_ids()))
        -- private.secondary_sees_ticket(), spelt out: a function with a search_path setting is
        -- never inlined, and this runs for every row.
        and not (ticket_type = 'prescription' and status = 'created')
    )
    or (select private.is_admin())
)
with check (
    patient_id = (select auth.uid())
    or primary_provider_id = any(array(select private.current_provider_ids()))
    or secondary_provider_id = any(array(select private.current_provider_ids()))
    or (select private.is_admin())
);

-- From policies/ticket_timeline.sql
-- ------------------------------------------------------------------------------------------

-- ticket_timeline: written by triggers only, append-only for everyone (service included);
-- a ticket's parties read its timeline.

alter table public.ticket_timeline enable row level security;

revoke all on public.ticket_timeline from anon, authenticated, service_role;
grant select on public.ticket_timeline to authenticated, service_role;

drop policy if exists "Ticket parties can read the timeline" on public.ticket_timeline;
create policy "Ticket parties can read the timeline"
on public.ticket_timeline for select to authenticated
using (private.is_ticket_party(ticket_id));

-- From policies/chat_threads.sql
-- ------------------------------------------------------------------------------------------

-- chat_threads: members read their threads (a ticket's thread: its parties, kept in sync by
-- triggers), admins read all. Threads of tickets are created by the ticket; a legacy thread
-- (no ticket) may still be started by a signed-in user during the rollout.

alter table public.chat_threads enable row level security;

revoke all on public.chat_threads from anon, authenticated, service_role;
grant select on public.chat_threads to authenticated;
grant insert (id, order_id, order_type, title, metadata, created_by)
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
-- ticket) manages its members, as before the rollout.

alter table public.chat_thread_members enable row level security;

revoke all on public.chat_thread_members from anon, authenticated, service_role;
grant select, insert, delete on public.chat_thread_members to authenticated;
grant update (last_read_at) on public.chat_thread_members to authenticated;
grant select, insert, update, delete on public.chat_thread_members to service_role;

-- Listed first for the reader: the policies of chat_threads and chat_messages look up the
-- caller's own row, which this policy admits without computing the caller's threads.
drop policy if exists "Users can read their own memberships" on public.chat_thread_members;
create policy "Users can read their own memberships"
on public.chat_thread_members for select to authenticated
using (profile_id = (select auth.uid()));

drop policy if exists "Thread members can read members" on public.chat_thread_members;
create policy "Thread members can read members"
on public.chat_thread_members for select to authenticated
using (
    thread_id = any(array(select private.current_thread_ids()))
    or (select private.is_admin())
);

drop policy if exists "Legacy thread creators can add members" on public.chat_thread_members;
create policy "Legacy thread creators can add members"
on public.chat_thread_members for insert to authenticated
with check (private.is_legacy_thread_creator(thread_id));

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
-- Messages are not edited or deleted through the API.

alter table public.chat_messages enable row level security;

revoke all on public.chat_messages from anon, authenticated, service_role;
grant select on public.chat_messages to authenticated;
grant insert (id, thread_id, sender_id, body, kind, metadata)
on public.chat_messages to authenticated;
grant select, insert, update, delete on public.chat_messages to service_role;

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
    or private.is_prescription_ticket_party(id)
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
-- it is sent (then frozen by trigger, CH007).

alter table public.prescription_items enable row level security;

revoke all on public.prescription_items from anon, authenticated, service_role;
grant select, insert, update, delete on public.prescription_items to authenticated;
grant select, insert, update, delete on public.prescription_items to service_role;

drop policy if exists "Prescription readers can read items" on public.prescription_items;
create policy "Prescription readers can read items"
on public.prescription_items for select to authenticated
using (private.can_read_prescription(prescription_id));

drop policy if exists "Prescribing doctors can add items" on public.prescription_items;
create policy "Prescribing doctors can add items"
on public.prescription_items for insert to authenticated
with check (private.is_prescribing_doctor(prescription_id));

drop policy if exists "Prescribing doctors can update items" on public.prescription_items;
create policy "Prescribing doctors can update items"
on public.prescription_items for update to authenticated
using (private.is_prescribing_doctor(prescription_id))
with check (private.is_prescribing_doctor(prescription_id));

drop policy if exists "Prescribing doctors can remove items" on public.prescription_items;
create policy "Prescribing doctors can remove items"
on public.prescription_items for delete to authenticated
using (private.is_prescribing_doctor(prescription_id));

-- From policies/notifications.sql
-- ------------------------------------------------------------------------------------------

-- notifications: written by triggers; each recipient reads theirs and may set read_at only.

alter table public.notifications enable row level security;

revoke all on public.notifications from anon, authenticated, service_role;
grant select on public.notifications to authenticated;
grant update (read_at) on public.notifications to authenticated;
grant select, insert, update, delete on public.notifications to service_role;

drop policy if exists "Recipients can read their notifications" on public.notifications;
create policy "Recipients can read their notifications"
on public.notifications for select to authenticated
using (recipient_id = (select auth.uid()));

drop policy if exists "Recipients can mark their notifications read" on public.notifications;
create policy "Recipients can mark their notifications read"
on public.notifications for update to authenticated
using (recipient_id = (select auth.uid()))
with check (recipient_id = (select auth.uid()));

-- From policies/realtime_messages.sql
-- ------------------------------------------------------------------------------------------

-- Realtime: the ticket tables in the supabase_realtime publication, and Realtime Authorization
-- on realtime.messages: only a ticket's parties join (receive on, send to) its private channel
-- 'ticket:<ticket id>'. The scheduling tables join the publication with their own policies.

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
using (private.can_join_ticket_channel((select realtime.topic())));

drop policy if exists "Ticket parties can send on ticket channels" on realtime.messages;
create policy "Ticket parties can send on ticket channels"
on realtime.messages for insert to authenticated
with check (private.can_join_ticket_channel((select realtime.topic())));
