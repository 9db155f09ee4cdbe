-- Tickets that come from tickets, the rules: which pairs, who creates them and with which
-- parties (CH008), create_ticket_from, the origin's timeline, a referral completing with its
-- consultation; the ticket triggers take the origin into account (a follow-up is checked
-- against its origin instead of ticket_openers, a prescription from a consultation needs no
-- appointment, a consultation from a referral is fulfilled by a specialist).

alter table public.healthcare_tickets
validate constraint healthcare_tickets_origin_ticket_id_fkey;
alter table public.healthcare_tickets
validate constraint healthcare_tickets_origin_not_itself;

-- From functions-sql/tickets_origin.sql
-- ------------------------------------------------------------------------------------------

-- Tickets that come from tickets (healthcare_tickets.origin_ticket_id): a prescription,
-- referral or diagnostic order from a consultation the caller's practice accepted; a
-- consultation from a referral the caller's specialist provider accepted. Which pairs, who
-- creates them and with which parties; create_ticket_from; the origin's timeline recording the
-- derived ticket; a referral completing with the consultation derived from it.
--
-- Visibility: a derived ticket has its own parties and no others. Its origin id is only a link:
-- no party of the origin gains the derived ticket, and no party of the derived ticket gains the
-- origin (its row, thread, timeline or files), through it. The pairs are built so that the
-- people who need to follow a derived ticket are its parties: the patient always; the practice
-- that derives from a consultation is the derived ticket's requester; the consultation derived
-- from a referral has the referral's requester (the referring GP) as its primary and the
-- accepting specialist as its fulfiller.

-- The kind of provider that fulfils a ticket of type p_ticket_type coming from ticket
-- p_origin_ticket_id: the type's fulfiller kind, except that a consultation from a referral is
-- fulfilled by a specialist (the one who accepted the referral).
create or replace function private.ticket_fulfiller_kind(
    p_ticket_type text, p_origin_ticket_id uuid
)
returns text
language sql stable
security definer
set search_path = ''
as $fn$
    select case
        when p_ticket_type = 'consultation' and exists (
            select from public.healthcare_tickets as o
            where o.id = p_origin_ticket_id and o.ticket_type = 'referral'
        ) then 'specialist'
        else (
            select tt.fulfiller_kind from public.ticket_types as tt
            where tt.ticket_type = p_ticket_type
        )
    end
$fn$;

-- Raises CH008 unless p_ticket may come from its origin ticket. The pairs: a prescription,
-- referral or diagnostic order from a consultation that is accepted or in_progress (a
-- consultation a specialist fulfils yields prescriptions and diagnostic orders, not referrals),
-- requested by the consultation's fulfiller; a consultation from a referral that is accepted or
-- scheduled, with the referral's requester as primary and its fulfiller as secondary. Always for
-- the same patient. A signed-in caller must act for the origin's fulfiller (the practice or
-- specialist that accepted it); anyone else gets one answer, whatever the origin is.
create or replace function private.check_ticket_origin(p_ticket public.healthcare_tickets)
returns void
language plpgsql stable
security definer
set search_path = ''
as $fn$
declare
    v_origin public.healthcare_tickets;
    v_problem text;
begin
    select o.* into v_origin from public.healthcare_tickets as o
    where o.id = p_ticket.origin_ticket_id;
    if v_origin.id is null or (
        (select auth.uid()) is not null
        and not (
            private.fulfiller_is_party(v_origin.sent_at)
            and private.is_provider_member(v_origin.secondary_provider_id)
        )
    ) then
        raise exception 'ticket % is not a ticket your provider fulfils, so no ticket can come '
            'from it (CH008)', p_ticket.origin_ticket_id
            using errcode = 'CH008',
            hint = 'Create follow-up tickets from consultations or referrals your provider '
            || 'accepted.';
    end if;
    v_problem := case
        when v_origin.id = p_ticket.id then 'a ticket cannot come from itself'
        when v_origin.patient_id is distinct from p_ticket.patient_id then
            'a follow-up ticket is for the same patient as the ticket it comes from'
        when v_origin.ticket_type = 'consultation'
            and p_ticket.ticket_type in ('prescription', 'referral', 'diagnostic') then
            case
                when v_origin.status not in ('accepted', 'in_progress') then pg_catalog.format(
                    'consultation %s is ''%s''; follow-up tickets come from an accepted or '
                    'in-progress consultation', v_origin.id, v_origin.status
                )
                when v_origin.required_provider_kind = 'specialist'
                    and p_ticket.ticket_type = 'referral' then
                    'a specialist''s consultation leads to prescriptions and diagnostic orders, '
                    'not to referrals'
                when p_ticket.primary_provider_id is distinct from v_origin.secondary_provider_id
                    then 'the practice that holds the consultation requests its follow-up tickets'
            end
        when v_origin.ticket_type = 'referral' and p_ticket.ticket_type = 'consultation' then
            case
                when v_origin.status not in ('accepted', 'scheduled') then pg_catalog.format(
                    'referral %s is ''%s''; a consultation comes from an accepted referral',
                    v_origin.id, v_origin.status
                )
                when p_ticket.primary_provider_id is distinct from v_origin.primary_provider_id
                    or p_ticket.secondary_provider_id
                    is distinct from v_origin.secondary_provider_id then
                    'a consultation from a referral is requested by the referring practice and '
                    'fulfilled by the specialist who accepted the referral'
            end
        else pg_catalog.format(
            'a %s ticket does not come from a %s ticket', p_ticket.ticket_type,
            v_origin.ticket_type
        )
    end;
    if v_problem is not null then
        raise exception 'ticket % cannot come from ticket %: % (CH008)',
            coalesce(p_ticket.id::text, 'new'), v_origin.id, v_problem
            using errcode = 'CH008',
            hint = 'Prescriptions, referrals and diagnostic orders come from accepted '
            || 'consultations; consultations from accepted referrals (create_ticket_from).';
    end if;
end
$fn$;

-- Before insert or update of a ticket (after set_ticket_defaults and enforce_ticket_update): a
-- ticket with an origin obeys the origin rules, and its origin never changes through the API
-- (CH007); the fulfiller of a consultation from a referral stays the specialist who accepted
-- the referral (CH007). The system may clear an origin (its erasure sets it null).
create or replace function private.verify_ticket_origin()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    if tg_op = 'UPDATE' then
        if new.origin_ticket_id is not distinct from old.origin_ticket_id then
            if new.origin_ticket_id is not null and new.ticket_type = 'consultation'
                and new.secondary_provider_id is distinct from old.secondary_provider_id
                and new.required_provider_kind = 'specialist'
                and not private.is_system_actor() then
                raise exception 'ticket %: a consultation from a referral stays with the '
                    'specialist who accepted the referral (CH007)', old.id
                    using errcode = 'CH007', hint = 'Refer the patient again instead.';
            end if;
            return new;
        end if;
        if not private.is_system_actor() then
            raise exception 'ticket %: origin_ticket_id may not be changed by this actor (CH007)',
                old.id
                using errcode = 'CH007',
                hint = 'Create the follow-up ticket with create_ticket_from.';
        end if;
        if new.origin_ticket_id is null then
            return new;
        end if;
    elsif new.origin_ticket_id is null then
        return new;
    end if;
    perform private.check_ticket_origin(new);
    return new;
end
$fn$;

-- After a ticket with an origin is created: the origin's timeline records it
-- (derived_ticket_created, details.ticket_id and ticket_type).
create or replace function private.record_derived_ticket()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_origin public.healthcare_tickets;
begin
    select o.* into v_origin from public.healthcare_tickets as o where o.id = new.origin_ticket_id;
    insert into public.ticket_timeline (
        ticket_id, event_type, actor_id, actor_kind, source, details
    )
    values (
        v_origin.id,
        'derived_ticket_created',
        (select auth.uid()),
        private.timeline_actor_kind(v_origin, v_origin),
        private.request_source(),
        pg_catalog.jsonb_build_object('ticket_id', new.id, 'ticket_type', new.ticket_type)
    );
    return null;
end
$fn$;

-- After a consultation that came from a referral completes: the referral completes, as the
-- system (no user claims while it runs: the timeline says system, and the referral's parties,
-- the referring practice and the patient, are notified by the status trigger).
create or replace function private.complete_referral_with_its_consultation()
returns trigger
language plpgsql
security definer
set search_path = ''
set "request.jwt.claims" = ''
set "request.jwt.claim.sub" = ''
as $fn$
begin
    update public.healthcare_tickets as r
    set status = 'completed'
    where
        r.id = new.origin_ticket_id
        and r.ticket_type = 'referral'
        and r.status in ('accepted', 'scheduled');
    return null;
end
$fn$;

-- The work of public.create_ticket_from, with the privileges it needs: the consultation a
-- specialist derives from a referral has the referring practice, not the specialist's, as its
-- requester, which no API insert may write.
create or replace function private.create_ticket_from(
    p_origin_ticket_id uuid,
    p_ticket_type text,
    p_secondary_provider_id uuid,
    p_fields jsonb default '{}'
)
returns public.healthcare_tickets
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_origin public.healthcare_tickets;
    v_ticket public.healthcare_tickets;
    v_unknown text;
    v_from_referral boolean;
begin
    if (select auth.uid()) is null then
        raise exception 'sign in to create follow-up tickets'
            using errcode = '42501', hint = 'Call create_ticket_from as a provider member.';
    end if;
    -- Locked, so the origin does not move on (or complete) while its follow-up is made.
    select o.* into v_origin from public.healthcare_tickets as o
    where o.id = p_origin_ticket_id
    for share;
    if v_origin.id is null or not (
        private.fulfiller_is_party(v_origin.sent_at)
        and private.is_provider_member(v_origin.secondary_provider_id)
    ) then
        raise exception 'ticket % is not a ticket your provider fulfils, so no ticket can come '
            'from it (CH008)', p_origin_ticket_id
            using errcode = 'CH008',
            hint = 'Create follow-up tickets from consultations or referrals your provider '
            || 'accepted.';
    end if;
    select pg_catalog.string_agg(k, ', ' order by k) into v_unknown
    from pg_catalog.jsonb_object_keys(coalesce(p_fields, '{}')) as k
    where k not in ('title', 'description', 'category', 'urgency', 'session_mode', 'metadata');
    if v_unknown is not null then
        raise exception 'create_ticket_from takes title, description, category, urgency, '
            'session_mode and metadata in p_fields, not %', v_unknown
            using errcode = '22023', hint = 'Set other fields on the ticket once it exists.';
    end if;
    v_from_referral := v_origin.ticket_type = 'referral' and p_ticket_type = 'consultation';
    if v_from_referral and p_secondary_provider_id is distinct from v_origin.secondary_provider_id
        and p_secondary_provider_id is not null then
        raise exception 'a consultation from referral % is fulfilled by the specialist who '
            'accepted it (CH008)', v_origin.id
            using errcode = 'CH008', hint = 'Pass null as p_secondary_provider_id.';
    end if;
    insert into public.healthcare_tickets (
        ticket_type, patient_id, primary_provider_id, secondary_provider_id, origin_ticket_id,
        created_by, title, description, category, urgency, session_mode, metadata
    )
    values (
        p_ticket_type,
        v_origin.patient_id,
        case
            when v_from_referral then v_origin.primary_provider_id
            else v_origin.secondary_provider_id
        end,
        case
            when v_from_referral then v_origin.secondary_provider_id
            else p_secondary_provider_id
        end,
        v_origin.id,
        (select auth.uid()),
        p_fields ->> 'title',
        p_fields ->> 'description',
        p_fields ->> 'category',
        coalesce(p_fields ->> 'urgency', 'normal'),
        p_fields ->> 'session_mode',
        coalesce(p_fields -> 'metadata', '{}')
    )
    returning * into v_ticket;
    return v_ticket;
end
$fn$;

-- create_ticket_from(p_origin_ticket_id, p_ticket_type, p_secondary_provider_id, p_fields):
-- the caller, acting for the fulfiller of ticket p_origin_ticket_id, creates a ticket of type
-- p_ticket_type that comes from it, for the same patient: from an accepted or in-progress
-- consultation a prescription, referral or diagnostic order requested by the consultation's
-- practice and sent to p_secondary_provider_id (null: open for claiming, where the type allows);
-- from an accepted referral the consultation it asked for (requested by the referring practice,
-- fulfilled by the specialist; p_secondary_provider_id null or that specialist). p_fields may
-- carry title, description, category, urgency, session_mode and metadata. Returns the new ticket
-- (at its type's initial status; the origin's timeline records it). Raises 42501 when no user is
-- signed in; CH008 when the caller does not act for the origin's fulfiller, or the pair, the
-- origin's status or the parties are not allowed; 22023 for other keys in p_fields.
create or replace function public.create_ticket_from(
    p_origin_ticket_id uuid,
    p_ticket_type text,
    p_secondary_provider_id uuid,
    p_fields jsonb default '{}'
)
returns public.healthcare_tickets
language sql
security invoker
set search_path = ''
as $fn$
    select * from private.create_ticket_from(
        p_origin_ticket_id, p_ticket_type, p_secondary_provider_id, p_fields
    )
$fn$;

revoke execute on function private.ticket_fulfiller_kind(text, uuid) from public;
revoke execute on function private.check_ticket_origin(public.healthcare_tickets) from public;
revoke execute on function private.verify_ticket_origin() from public;
revoke execute on function private.record_derived_ticket() from public;
revoke execute on function private.complete_referral_with_its_consultation() from public;
revoke execute on function private.create_ticket_from(uuid, text, uuid, jsonb) from public;
revoke execute on function public.create_ticket_from(uuid, text, uuid, jsonb) from public, anon;
grant execute on function private.ticket_fulfiller_kind(text, uuid) to authenticated, service_role;
grant execute on function private.check_ticket_origin(
    public.healthcare_tickets
) to authenticated, service_role;
grant execute on function private.create_ticket_from(
    uuid, text, uuid, jsonb
) to authenticated, service_role;
grant execute on function public.create_ticket_from(
    uuid, text, uuid, jsonb
) to authenticated, service_role;

drop trigger if exists verify_ticket_origin on public.healthcare_tickets;
create trigger verify_ticket_origin
before insert or update on public.healthcare_tickets
for each row execute function private.verify_ticket_origin();

drop trigger if exists record_derived_ticket on public.healthcare_tickets;
create trigger record_derived_ticket
after insert on public.healthcare_tickets
for each row when (new.origin_ticket_id is not null)
execute function private.record_derived_ticket();

drop trigger if exists complete_referral_with_its_consultation on public.healthcare_tickets;
create trigger complete_referral_with_its_consultation
after update of status on public.healthcare_tickets
for each row
when (
    new.ticket_type = 'consultation'
    and new.status = 'completed'
    and old.status is distinct from new.status
    and new.origin_ticket_id is not null
)
execute function private.complete_referral_with_its_consultation();

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

-- From policies/healthcare_tickets_origin.sql
-- ------------------------------------------------------------------------------------------

-- healthcare_tickets.origin_ticket_id for API callers (after policies/healthcare_tickets.sql,
-- whose `revoke all` comes first): inserting it makes a follow-up ticket, held to the origin
-- rules (functions-sql/tickets_origin.sql); updating it is granted only so that the attempt
-- fails with the domain error that says why (CH007), as for the ticket's other identity columns.
-- Kept apart while that file is being tuned; it belongs in its two grant lists.

grant insert (origin_ticket_id) on public.healthcare_tickets to authenticated;
grant update (origin_ticket_id) on public.healthcare_tickets to authenticated;
