-- Who writes what on a ticket (access issue, rules 2 and 6 to 11): openers and the care
-- relationship on insert, the appointment a ticket hangs off, caps on patient-opened tickets
-- (locked per patient), field writers and no change after a terminal status, old and new values
-- in the timeline, the prescription link re-checked on every move past the draft and frozen
-- parties of a linked prescription, one read policy, no client-chosen ids, no deletes but the
-- audited erasure. Each section carries the current definition of its declarative file.

-- Tickets whose required_provider_kind is not their type's fulfiller kind were written by a
-- client before the database set it; they are listed for an operator (cancel them, or correct
-- the kind as the system), not changed here.
do $do$
declare
    v_ids text;
begin
    select pg_catalog.string_agg(t.id::text, ', ') into v_ids
    from public.healthcare_tickets as t
    inner join public.ticket_types as tt on t.ticket_type = tt.ticket_type
    where t.required_provider_kind <> tt.fulfiller_kind;
    if v_ids is not null then
        raise notice 'tickets whose required_provider_kind is not their type''s fulfiller kind: %',
            v_ids;
    end if;
end
$do$;

-- From functions-sql/tickets_openers.sql
-- ------------------------------------------------------------------------------------------

-- Opening a ticket: who may open which type (ticket_openers), the care relationship a provider
-- needs with the patient, the appointment a ticket hangs off, the caps on patient-opened tickets
-- and who may link which prescription. Called by the ticket triggers (tickets_status.sql);
-- each raises one message that tells the caller nothing about rows they cannot see.

-- Whether provider p_provider_id has a care relationship with patient p_patient_id: the patient
-- has (or had) a reservation with one of its members, or the provider is a party to one of the
-- patient's tickets (its requester, or its fulfiller once the ticket was sent). Both are made
-- by the patient or with them: a reservation only through the patient's own booking, a ticket
-- only by a provider that already had the relationship or that the patient chose.
create or replace function private.has_care_relationship(p_provider_id uuid, p_patient_id uuid)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select
        exists (
            select from public.reservation as r
            inner join public.provider_members as m on r.profile_id = m.profile_id
            where m.provider_id = p_provider_id and r.patient_id = p_patient_id
        )
        or exists (
            select from public.healthcare_tickets as t
            where
                t.patient_id = p_patient_id
                and (
                    t.primary_provider_id = p_provider_id
                    or (t.secondary_provider_id = p_provider_id and t.sent_at is not null)
                )
        )
$fn$;

-- Raises CH008 unless the caller may open p_ticket as ticket_openers says: as its patient for
-- themselves (no requesting provider), or as a member, with the listed profile role, of an
-- active requesting provider of the listed kind that has a care relationship with the patient.
create or replace function private.check_ticket_opener(p_ticket public.healthcare_tickets)
returns void
language plpgsql stable
security definer
set search_path = ''
as $fn$
declare
    v_role text;
    v_kind text;
begin
    if p_ticket.primary_provider_id is null then
        if p_ticket.patient_id is not distinct from (select auth.uid()) and exists (
            select from public.ticket_openers as o
            where o.ticket_type = p_ticket.ticket_type and o.opener_role = 'patient'
        ) then
            return;
        end if;
        raise exception 'patients do not open % tickets themselves (CH008)', p_ticket.ticket_type
            using errcode = 'CH008',
            hint = 'See ticket_openers for who opens each ticket type.';
    end if;
    select pr.role, p.kind into v_role, v_kind
    from public.provider_members as m
    inner join public.providers as p on m.provider_id = p.id
    inner join public.profile as pr on m.profile_id = pr.id
    where
        m.provider_id = p_ticket.primary_provider_id
        and m.profile_id = (select auth.uid())
        and p.is_active;
    if not exists (
        select from public.ticket_openers as o
        where
            o.ticket_type = p_ticket.ticket_type
            and o.opener_role = v_role
            and o.provider_kind = v_kind
    ) then
        raise exception 'a % of a % provider does not open % tickets (CH008)',
            coalesce(v_role, 'member'), coalesce(v_kind, 'inactive'), p_ticket.ticket_type
            using errcode = 'CH008',
            hint = 'See ticket_openers for who opens each ticket type.';
    end if;
    if p_ticket.patient_id is null
        or not private.has_care_relationship(p_ticket.primary_provider_id, p_ticket.patient_id) then
        raise exception
            'your provider has no care relationship with this patient, so it cannot open '
            'tickets for them (CH008)'
            using errcode = 'CH008',
            hint = 'A provider opens tickets for patients who booked with one of its members '
            || 'or whose tickets it is a party to.';
    end if;
end
$fn$;

-- Raises CH008 unless p_ticket's appointment (when set) is a reservation of the same patient
-- with a practitioner who is a member of the ticket's requester or, for the types whose
-- fulfiller schedules (ticket_field_writers gives it scheduled_time), of its fulfiller. So no one
-- can hang a ticket off another practice's appointment (and take its slot in the one live
-- prescription ticket per appointment and pharmacy). One message whether the reservation is
-- missing or someone else's.
create or replace function private.check_ticket_appointment(p_ticket public.healthcare_tickets)
returns void
language plpgsql stable
security definer
set search_path = ''
as $fn$
begin
    if p_ticket.appointment_id is null or exists (
        select from public.reservation as r
        inner join public.provider_members as m on r.profile_id = m.profile_id
        where
            r.id = p_ticket.appointment_id
            and r.patient_id is not distinct from p_ticket.patient_id
            and (
                m.provider_id = p_ticket.primary_provider_id
                or (
                    m.provider_id = p_ticket.secondary_provider_id
                    and exists (
                        select from public.ticket_field_writers as w
                        where
                            w.ticket_type = p_ticket.ticket_type
                            and w.column_name = 'scheduled_time'
                            and w.actor = 'secondary'
                    )
                )
            )
    ) then
        return;
    end if;
    raise exception
        'appointment % is not a reservation of this patient with a member of the ticket''s '
        'provider (CH008)', p_ticket.appointment_id
        using errcode = 'CH008',
        hint = 'Use one of your own appointments with this patient.';
end
$fn$;

-- Raises CH009 when p_ticket would exceed a cap of private.limits for its patient: one open
-- crisis counselling ticket (open_crisis_tickets_per_patient), and a number of open tickets per
-- type that the patient opened themselves (open_patient_tickets_per_type). Open = not at a
-- terminal status; p_ticket itself (on update) is not counted. Takes a transaction-level
-- advisory lock on the patient first, so concurrent openings by one patient count one another
-- (each statement after the lock sees what the others committed).
create or replace function private.check_ticket_caps(p_ticket public.healthcare_tickets)
returns void
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_open_id uuid;
    v_open_at timestamptz;
    v_count bigint;
    v_limit integer;
begin
    if p_ticket.patient_id is null then
        return;
    end if;
    perform pg_catalog.pg_advisory_xact_lock(
        pg_catalog.hashtextextended('ticket_caps:' || p_ticket.patient_id::text, 0)
    );
    if p_ticket.ticket_type = 'counseling' and p_ticket.urgency = 'crisis' then
        v_limit := private.limit_value('open_crisis_tickets_per_patient');
        select count(*), (array_agg(t.id order by t.created_at))[1], min(t.created_at)
        into v_count, v_open_id, v_open_at
        from public.healthcare_tickets as t
        inner join public.ticket_statuses as s
            on t.ticket_type = s.ticket_type and t.status = s.status
        where
            t.patient_id = p_ticket.patient_id
            and t.ticket_type = 'counseling'
            and t.urgency = 'crisis'
            and not s.is_terminal
            and t.id <> p_ticket.id;
        if v_count >= v_limit then
            raise exception
                'you already have an open crisis counselling ticket (%, opened %); a '
                'counsellor will answer it there (CH009)', v_open_id, v_open_at
                using errcode = 'CH009',
                hint = 'Write in that ticket''s thread, or close it before opening another. '
                || 'In an emergency call your local emergency number.';
        end if;
    end if;
    if p_ticket.primary_provider_id is null then
        v_limit := private.limit_value('open_patient_tickets_per_type');
        select count(*) into v_count
        from public.healthcare_tickets as t
        inner join public.ticket_statuses as s
            on t.ticket_type = s.ticket_type and t.status = s.status
        where
            t.patient_id = p_ticket.patient_id
            and t.ticket_type = p_ticket.ticket_type
            and t.primary_provider_id is null
            and not s.is_terminal
            and t.id <> p_ticket.id;
        if v_count >= v_limit then
            raise exception
                'you already have % open % tickets, the most you may have open at once '
                '(CH009)', v_count, p_ticket.ticket_type
                using errcode = 'CH009',
                hint = 'Close or cancel one of them before opening another.';
        end if;
    end if;
end
$fn$;

-- Whether the caller may link prescription p_prescription_id to a ticket of requester
-- p_primary_provider_id: they wrote it, or a colleague in that provider did. Anything else
-- (someone else's prescription, or none) gets one answer, before any detail is checked.
create or replace function private.caller_may_link_prescription(
    p_prescription_id uuid, p_primary_provider_id uuid
)
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
                or (
                    private.is_provider_member(p_primary_provider_id)
                    and exists (
                        select from public.provider_members as m
                        where m.provider_id = p_primary_provider_id and m.profile_id = rx.doctor_id
                    )
                )
            )
    )
$fn$;

-- Whether prescription p_prescription_id is linked to a ticket (whoever may see it).
create or replace function private.is_prescription_linked(p_prescription_id uuid)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.healthcare_tickets as t where t.prescription_id = p_prescription_id
    )
$fn$;

revoke execute on function private.has_care_relationship(uuid, uuid) from public;
revoke execute on function private.check_ticket_opener(public.healthcare_tickets) from public;
revoke execute on function private.check_ticket_appointment(public.healthcare_tickets) from public;
revoke execute on function private.check_ticket_caps(public.healthcare_tickets) from public;
revoke execute on function private.caller_may_link_prescription(uuid, uuid) from public;
revoke execute on function private.is_prescription_linked(uuid) from public;
grant execute on function private.has_care_relationship(uuid, uuid) to authenticated, service_role;
grant execute on function private.check_ticket_opener(
    public.healthcare_tickets
) to authenticated, service_role;
grant execute on function private.check_ticket_appointment(
    public.healthcare_tickets
) to authenticated, service_role;
grant execute on function private.check_ticket_caps(
    public.healthcare_tickets
) to authenticated, service_role;
grant execute on function private.caller_may_link_prescription(
    uuid, uuid
) to authenticated, service_role;
grant execute on function private.is_prescription_linked(uuid) to authenticated, service_role;

-- From functions-sql/tickets_erasure.sql
-- ------------------------------------------------------------------------------------------

-- Erasing a ticket: the one way a ticket and its append-only history are deleted, recorded in
-- private.ticket_erasures. No API role (not even service_role) may delete tickets; a DBA runs
-- this for a documented legal erasure request.

-- erase_ticket(p_ticket_id, p_reason, p_requested_by): deletes the ticket with its timeline,
-- thread, messages, notifications and tracking (their foreign keys cascade), after recording
-- who erased it (session_user), why, on whose request, and how many timeline rows and messages
-- went with it. The prescription stays (its own erasure is the prescribing practice's).
-- Returns the audit row. Raises P0002 when the ticket does not exist, 22023 without a reason or
-- requester. Executable by nobody but its owner (the DBA): not granted to any API role.
create or replace function private.erase_ticket(
    p_ticket_id uuid, p_reason text, p_requested_by text
)
returns private.ticket_erasures
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket public.healthcare_tickets;
    v_erasure private.ticket_erasures;
begin
    if coalesce(pg_catalog.btrim(p_reason), '') = ''
        or coalesce(pg_catalog.btrim(p_requested_by), '') = '' then
        raise exception 'an erasure needs a reason and the name of who requested it'
            using errcode = '22023',
            hint = 'e.g. erase_ticket(id, ''GDPR art. 17 request #123'', ''patient by email'').';
    end if;
    select t.* into v_ticket from public.healthcare_tickets as t
    where t.id = p_ticket_id
    for update;
    if not found then
        raise exception 'ticket % does not exist', p_ticket_id
            using errcode = 'P0002', hint = 'See private.ticket_erasures for erased tickets.';
    end if;
    insert into private.ticket_erasures (
        ticket_id, ticket_type, patient_id, reason, requested_by, erased_by, timeline_rows,
        messages
    )
    select
        v_ticket.id,
        v_ticket.ticket_type,
        v_ticket.patient_id,
        p_reason,
        p_requested_by,
        session_user,
        (select count(*) from public.ticket_timeline as tl where tl.ticket_id = v_ticket.id),
        (
            select count(*) from public.chat_messages as m
            inner join public.chat_threads as th on m.thread_id = th.id
            where th.ticket_id = v_ticket.id
        )
    returning * into v_erasure;
    delete from public.healthcare_tickets as t where t.id = v_ticket.id;
    return v_erasure;
end
$fn$;

revoke execute on function private.erase_ticket(uuid, text, text) from public;

-- From functions-sql/tickets_status.sql
-- ------------------------------------------------------------------------------------------

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
-- the required provider kind is the type's fulfiller kind (a different one is refused: CH007).
-- An API caller must be allowed by ticket_openers and within the caps; a prescription ticket
-- they open hangs off an appointment. The system (backfill, service) may insert a ticket at
-- any status; the appointment, the fulfiller's kind and the prescription are checked for all.
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
        perform private.check_ticket_opener(new);
        -- The fulfiller sets when and where; the requester may ask for a session mode.
        if new.scheduled_time is not null or new.meeting_link is not null then
            raise exception 'scheduled_time and meeting_link are set by the % once it takes the '
                'ticket (CH007)', v_type.fulfiller_kind
                using errcode = 'CH007', hint = 'Leave them out; say what suits you in description.';
        end if;
        if new.ticket_type = 'prescription' and new.appointment_id is null then
            raise exception 'a prescription ticket belongs to an appointment (CH008)'
                using errcode = 'CH008',
                hint = 'Call get_or_create_prescription_ticket(appointment_id, pharmacy_id).';
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
    if new.required_provider_kind is distinct from v_type.fulfiller_kind
        and new.required_provider_kind is not null then
        raise exception 'a % ticket is always fulfilled by a %, not a % (CH007)',
            new.ticket_type, v_type.fulfiller_kind, new.required_provider_kind
            using errcode = 'CH007',
            hint = 'Leave required_provider_kind out; the database sets it.';
    end if;
    new.required_provider_kind := v_type.fulfiller_kind;
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
        and new.required_provider_kind is distinct from v_type.fulfiller_kind then
        raise exception 'a % ticket is always fulfilled by a %, not a % (CH007)',
            new.ticket_type, v_type.fulfiller_kind, new.required_provider_kind
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
-- status change, in one 'updated' row, with their old and new values (details.changes:
-- {"<column>": {"old": ..., "new": ...}}), so no edit loses what was there.
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
    v_changes jsonb;
begin
    select tt.claimed_status into v_claimed_status
    from public.ticket_types as tt where tt.ticket_type = new.ticket_type;

    select
        array_agg(n.key order by n.key),
        pg_catalog.jsonb_object_agg(
            n.key, pg_catalog.jsonb_build_object('old', o.value, 'new', n.value)
        )
    into v_other, v_changes
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
            -- Not stripped: a null old or new value is part of the record.
            || case
                when v_changes is null then '{}'::jsonb
                else pg_catalog.jsonb_build_object('changes', v_changes)
            end
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
            || case
                when old.prescription_id is null then '{}'::jsonb
                else pg_catalog.jsonb_build_object('from_prescription_id', old.prescription_id)
            end
        );
    end if;

    if v_other is not null and new.status is not distinct from old.status then
        insert into public.ticket_timeline (
            ticket_id, event_type, from_status, to_status, actor_id, actor_kind, source, details
        )
        values (
            new.id, 'updated', old.status, new.status, v_actor, v_kind, v_source,
            pg_catalog.jsonb_build_object(
                'columns', pg_catalog.to_jsonb(v_other), 'changes', v_changes
            )
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

-- From functions-sql/prescriptions.sql (freeze_sent_prescription)
-- ------------------------------------------------------------------------------------------

-- Clinical fields are frozen once the prescription's ticket is sent (CH007). The pharmacy's
-- order id and Rx number stay writable; sent_at is set once, by the ticket. Who the
-- prescription is for, by and to cannot change once it is linked to a ticket, sent or not, so
-- the ticket and its prescription always name the same patient, doctor and pharmacy.
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
    if (
        new.doctor_id is distinct from old.doctor_id
        or new.pharmacy_id is distinct from old.pharmacy_id
        or new.patient_id is distinct from old.patient_id
    ) and private.is_prescription_linked(old.id) then
        raise exception
            'prescription % is linked to a ticket; its patient, doctor and pharmacy cannot '
            'change (CH007)', old.id
            using errcode = 'CH007',
            hint = 'Cancel the ticket and write a new prescription for another patient or '
            || 'pharmacy.';
    end if;
    new.updated_at := pg_catalog.now();
    return new;
end
$fn$;

-- From policies/healthcare_tickets.sql
-- ------------------------------------------------------------------------------------------

-- healthcare_tickets: parties (patient, members of the primary and secondary providers, admins)
-- read and update their tickets; the fulfiller of a drafted ticket (prescription, referral,
-- diagnostic) sees nothing of it until it was sent (sent_at); open tickets are shown to the
-- providers that may claim them. One permissive policy per action. Policies judge a row from
-- its own columns, so `insert ... returning` works for its creator. Which changes an actor may
-- make is enforced by triggers (functions-sql/tickets_status.sql). Nobody deletes a ticket, not
-- even service_role: erasure is private.erase_ticket's (functions-sql/tickets_erasure.sql).

alter table public.healthcare_tickets enable row level security;

revoke all on public.healthcare_tickets from anon, authenticated, service_role;
grant select on public.healthcare_tickets to authenticated;
-- Not id (a chosen id would tell whether it exists), nor the bookkeeping columns.
-- required_provider_kind is granted so that a client still sending the right kind keeps
-- working; any other kind is refused (CH007).
grant insert (
    ticket_type, status, patient_id, primary_provider_id, secondary_provider_id,
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
grant select, insert, update on public.healthcare_tickets to service_role;

drop policy if exists "Ticket parties can read tickets" on public.healthcare_tickets;
drop policy if exists "Eligible claimers can read open tickets" on public.healthcare_tickets;
drop policy if exists "Ticket parties and eligible claimers can read tickets"
on public.healthcare_tickets;
create policy "Ticket parties and eligible claimers can read tickets"
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
    or (
        -- Open tickets, to the providers that may claim them.
        secondary_provider_id is null
        and required_provider_kind = any(array(select private.current_provider_kinds()))
        and private.caller_can_claim(ticket_type, status, required_provider_kind, category)
    )
);

-- Who opens which type, and for which patient, is ticket_openers' (set_ticket_defaults checks
-- this same condition first, then those rules).
drop policy if exists "Requesters and patients can create tickets" on public.healthcare_tickets;
create policy "Requesters and patients can create tickets"
on public.healthcare_tickets for insert to authenticated
with check (
    primary_provider_id = any(array(select private.current_provider_ids()))
    or (patient_id = (select auth.uid()) and primary_provider_id is null)
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
