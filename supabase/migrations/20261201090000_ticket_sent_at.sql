-- The fulfiller of a drafted ticket (prescription, referral, diagnostic) is a party only once
-- the ticket was sent: healthcare_tickets.sent_at records when, set once by the ticket triggers.
-- Before this, a prescription ticket cancelled while still 'created' became visible to its
-- pharmacy. Types without a draft (consultation, counselling) are sent on creation.

alter table public.ticket_types
add column starts_as_draft boolean not null default false;

comment on column public.ticket_types.starts_as_draft is
'The requester prepares the ticket before sending it; its fulfiller is a party only from sent_at.';

update public.ticket_types set starts_as_draft = true
where ticket_type in ('prescription', 'referral', 'diagnostic');

alter table public.healthcare_tickets add column sent_at timestamptz;

comment on column public.healthcare_tickets.sent_at is
'When the fulfiller became a party: creation for types without a draft, else the first move out '
'of the initial status to any status but cancelled. Set once, by the ticket triggers.';

-- Existing tickets: the time of their first move out of the draft (from the timeline), else
-- their last update. Triggers are off for this one statement so that it writes no timeline row,
-- notification or Realtime event about history.
alter table public.healthcare_tickets disable trigger user;

with first_sent as (
    select
        t.id,
        coalesce(
            min(tl.created_at),
            case when t.status <> 'cancelled' then t.updated_at end
        ) as sent_at
    from public.healthcare_tickets as t
    inner join public.ticket_types as tt on t.ticket_type = tt.ticket_type
    left join public.ticket_timeline as tl
        on
            t.id = tl.ticket_id
            and tl.event_type = 'status_changed'
            and tt.initial_status = tl.from_status
            and tl.to_status <> 'cancelled'
    where tt.starts_as_draft and t.status <> tt.initial_status
    group by t.id, t.status, t.updated_at
)

update public.healthcare_tickets as t
set sent_at = f.sent_at
from first_sent as f
where t.id = f.id;

update public.healthcare_tickets as t
set sent_at = t.created_at
from public.ticket_types as tt
where tt.ticket_type = t.ticket_type and not tt.starts_as_draft;

alter table public.healthcare_tickets enable trigger user;

-- From functions-sql/tickets_status.sql
-- ------------------------------------------------------------------------------------------

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
    -- sent_at: when the fulfiller became a party. A type without a draft is sent on creation;
    -- a drafted one (prescription, referral, diagnostic) once it leaves its initial status for
    -- any status but cancelled. The system (backfill) may bring the historic time.
    if not v_type.starts_as_draft
        or (new.status <> v_type.initial_status and new.status <> 'cancelled') then
        new.sent_at := coalesce(new.sent_at, pg_catalog.now());
    else
        new.sent_at := null;
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
        if old.sent_at is null and new.status <> 'cancelled' then
            new.sent_at := pg_catalog.now();
        end if;
    end if;
    -- Set once: the moment the fulfiller became a party never moves.
    new.sent_at := coalesce(old.sent_at, new.sent_at);

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

-- From policies/healthcare_tickets.sql
-- ------------------------------------------------------------------------------------------

drop policy if exists "Ticket parties can read tickets" on public.healthcare_tickets;
create policy "Ticket parties can read tickets"
on public.healthcare_tickets for select to authenticated
using (
    patient_id = (select auth.uid())
    or primary_provider_id = any(array(select private.current_provider_ids()))
    or (
        -- The fulfiller is a party once the ticket was sent (see tickets_status.sql).
        sent_at is not null
        and secondary_provider_id = any(array(select private.current_provider_ids()))
    )
    or (select private.is_admin())
);

drop policy if exists "Ticket parties can update tickets" on public.healthcare_tickets;
create policy "Ticket parties can update tickets"
on public.healthcare_tickets for update to authenticated
using (
    patient_id = (select auth.uid())
    or primary_provider_id = any(array(select private.current_provider_ids()))
    or (
        -- The fulfiller is a party once the ticket was sent (see tickets_status.sql).
        sent_at is not null
        and secondary_provider_id = any(array(select private.current_provider_ids()))
    )
    or (select private.is_admin())
)
with check (
    patient_id = (select auth.uid())
    or primary_provider_id = any(array(select private.current_provider_ids()))
    or secondary_provider_id = any(array(select private.current_provider_ids()))
    or (select private.is_admin())
);
