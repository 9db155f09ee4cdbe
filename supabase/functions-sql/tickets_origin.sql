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
