-- Ticket rules checked before a row is written: a new ticket's initial status and creator, who
-- may open it (ticket_openers, CH008) and the caps on opening (CH009), status transitions per
-- actor from ticket_status_transitions (CH001), the columns each actor may change
-- (ticket_field_writers, CH007), the fulfiller's kind, the appointment (CH008) and the
-- prescription a ticket links to (CH004). Authorisation comes first: a caller the policies
-- refuse learns nothing from the later checks.

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
-- the required provider kind is the type's fulfiller kind (a specialist for a consultation from
-- a referral; a different one is refused: CH007). An API caller must be allowed by
-- ticket_openers (or, for a ticket with an origin, by the origin rules of tickets_origin.sql)
-- and within the caps; a prescription ticket they open hangs off an appointment or comes from a
-- consultation. The system (backfill, service) may insert a ticket at
-- any status; the appointment, the fulfiller's kind and the prescription are checked for all.
create or replace function private.set_ticket_defaults()
returns trigger
language plpgsql
set search_path = ''
as $fn$
declare
    v_type public.ticket_types;
    v_kind text;
begin
    select * into v_type from public.ticket_types where ticket_type = new.ticket_type;
    if not found then
        return new;  -- the foreign key names the unknown type
    end if;
    v_kind := private.ticket_fulfiller_kind(new.ticket_type, new.origin_ticket_id);
    if private.is_system_actor() then
        new.status := coalesce(new.status, v_type.initial_status);
        new.created_by := coalesce(new.created_by, (select auth.uid()));
    else
        -- The insert policy's own condition, checked before anything that could tell a
        -- refused caller about other rows.
        if not (
            private.is_provider_member(new.primary_provider_id)
            or (new.primary_provider_id is null and new.patient_id = (select auth.uid()))
        ) then
            raise exception 'new row violates row-level security policy for table "%"',
                tg_table_name
                using errcode = '42501';
        end if;
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
        -- A follow-up is held to its origin instead (verify_ticket_origin, tickets_origin.sql).
        if new.origin_ticket_id is null then
            perform private.check_ticket_opener(new);
        end if;
        -- The fulfiller sets when and where; the requester may ask for a session mode.
        if new.scheduled_time is not null or new.meeting_link is not null then
            raise exception 'scheduled_time and meeting_link are set by the % once it takes the '
                'ticket (CH007)', v_type.fulfiller_kind
                using errcode = 'CH007', hint = 'Leave them out; say what suits you in description.';
        end if;
        if new.ticket_type = 'prescription' and new.appointment_id is null
            and new.origin_ticket_id is null then
            raise exception 'a prescription ticket belongs to an appointment or comes from a '
                'consultation (CH008)'
                using errcode = 'CH008',
                hint = 'Call get_or_create_prescription_ticket(appointment_id, pharmacy_id), or '
                || 'create_ticket_from(consultation_id, ''prescription'', pharmacy_id, ''{}'').';
        end if;
        if new.prescription_id is not null and not private.caller_may_link_prescription(
            new.prescription_id, new.primary_provider_id
        ) then
            raise exception 'prescription % is not one you can link (CH008)', new.prescription_id
                using errcode = 'CH008',
                hint = 'Link a prescription you or your practice wrote.';
        end if;
        perform private.check_ticket_caps(new);
    end if;
    if new.required_provider_kind is distinct from v_kind
        and new.required_provider_kind is not null then
        raise exception 'a % ticket is always fulfilled by a %, not a % (CH007)',
            new.ticket_type, v_kind, new.required_provider_kind
            using errcode = 'CH007',
            hint = 'Leave required_provider_kind out; the database sets it.';
    end if;
    new.required_provider_kind := v_kind;
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
    perform private.check_ticket_appointment(new);
    perform private.check_ticket_links(new);
    return new;
end
$fn$;

-- Before update: what the acting party may change. API callers change only the columns
-- ticket_field_writers gives their role on this ticket, and nothing once it is terminal
-- (CH007). System sessions may change any column and move the status forward (skipping steps);
-- nobody moves it back or out of a terminal status. The appointment, the fulfiller's kind and
-- the prescription are re-checked whenever what they depend on changes, and the prescription
-- also on every status change past the draft, for every actor.
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
    v_refused text[];
    v_allowed text;
begin
    select * into v_type from public.ticket_types where ticket_type = old.ticket_type;
    select * into v_from from public.ticket_statuses
    where ticket_type = old.ticket_type and status = old.status;
    select array_agg(n.key order by n.key) into v_changed
    from pg_catalog.jsonb_each(pg_catalog.to_jsonb(new)) as n
    inner join pg_catalog.jsonb_each(pg_catalog.to_jsonb(old)) as o on n.key = o.key
    where n.value is distinct from o.value and n.key <> 'updated_at';
    v_changed := coalesce(v_changed, '{}');

    if not v_system then
        v_roles := private.caller_ticket_roles(old);
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
        if v_from.is_terminal and v_changed <> array['status'] and v_changed <> '{}' then
            raise exception 'ticket % is ''%'', which is final; nothing on it can change (CH007)',
                old.id, old.status
                using errcode = 'CH007', hint = 'Create a new ticket for further work.';
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
        if 'prescription_id' = any(v_changed) and new.prescription_id is not null
            and not private.caller_may_link_prescription(
                new.prescription_id, old.primary_provider_id
            ) then
            raise exception 'prescription % is not one you can link (CH008)', new.prescription_id
                using errcode = 'CH008',
                hint = 'Link a prescription you or your practice wrote.';
        end if;
        if 'urgency' = any(v_changed) and new.urgency = 'crisis' then
            perform private.check_ticket_caps(new);
        end if;
    end if;

    if new.status is distinct from old.status then
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
    if not v_system then
        -- Every other column belongs to the roles ticket_field_writers names.
        v_refused := array(
            select c from pg_catalog.unnest(v_changed) as c
            where
                c not in ('status', 'secondary_provider_id', 'prescription_id')
                and not exists (
                    select from public.ticket_field_writers as w
                    where
                        w.ticket_type = old.ticket_type
                        and w.column_name = c
                        and w.actor = any(v_roles)
                )
        );
        if pg_catalog.cardinality(v_refused) > 0 then
            select pg_catalog.string_agg(distinct w.column_name, ', ') into v_allowed
            from public.ticket_field_writers as w
            where w.ticket_type = old.ticket_type and w.actor = any(v_roles);
            raise exception 'ticket %: you (%) may not change % of a % ticket (CH007)',
                old.id, coalesce(nullif(pg_catalog.array_to_string(v_roles, ', '), ''), 'no party'),
                pg_catalog.array_to_string(v_refused, ', '), old.ticket_type
                using errcode = 'CH007',
                hint = coalesce('You may change ' || v_allowed || '; see ticket_field_writers.',
                    'You change no fields of this ticket; see ticket_field_writers.');
        end if;
    end if;
    -- Set once: the moment the fulfiller became a party never moves.
    new.sent_at := coalesce(old.sent_at, new.sent_at);

    if 'required_provider_kind' = any(v_changed)
        and new.required_provider_kind
        is distinct from private.ticket_fulfiller_kind(new.ticket_type, new.origin_ticket_id) then
        raise exception 'a % ticket is always fulfilled by a %, not a % (CH007)',
            new.ticket_type,
            private.ticket_fulfiller_kind(new.ticket_type, new.origin_ticket_id),
            new.required_provider_kind
            using errcode = 'CH007', hint = 'The database sets required_provider_kind.';
    end if;
    if v_changed && array[
        'appointment_id', 'patient_id', 'primary_provider_id', 'secondary_provider_id'
    ] then
        perform private.check_ticket_appointment(new);
    end if;
    -- The prescription must fit at every move past the draft, not only when it is linked.
    if v_changed && array[
        'secondary_provider_id', 'prescription_id', 'patient_id', 'primary_provider_id',
        'required_provider_kind'
    ] or (new.status is distinct from old.status and new.prescription_id is not null) then
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
