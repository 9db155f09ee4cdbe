-- The doctor's entry point to prescription tickets: get_or_create_prescription_ticket, a
-- security invoker function in public over its security definer body in private.

-- The doctor or clinic provider that requests the prescription tickets of practitioner
-- p_profile_id: their default practice (profile.default_provider_id) when it is a doctor or
-- clinic provider they act for, else their only doctor or clinic provider. Null when they have
-- none; raises CH008 when they have several and no default, so the choice is never a guess.
create or replace function private.prescription_requester(p_profile_id uuid)
returns uuid
language plpgsql stable
security definer
set search_path = ''
as $fn$
declare
    v_provider_ids uuid[];
    v_default uuid;
begin
    select pg_catalog.array_agg(m.provider_id order by m.provider_id) into v_provider_ids
    from public.provider_members as m
    inner join public.providers as p on m.provider_id = p.id
    where m.profile_id = p_profile_id and p.kind in ('doctor', 'clinic');
    select u.default_provider_id into v_default
    from public.profile as u
    where u.id = p_profile_id;
    if v_default = any(v_provider_ids) then
        return v_default;
    elsif pg_catalog.cardinality(v_provider_ids) > 1 then
        raise exception 'the practitioner acts for % practices and has not chosen one (CH008)',
            pg_catalog.cardinality(v_provider_ids)
            using errcode = 'CH008',
            hint = 'The practitioner sets their default practice with set_default_provider.';
    end if;
    return v_provider_ids[1];
end
$fn$;

-- get_or_create_prescription_ticket(p_appointment_id, p_pharmacy_id) returns
-- healthcare_tickets
-- The live prescription ticket of this appointment for this pharmacy, created (with its
-- thread) when there is none. The patient is the reservation's; the requester is the
-- practitioner's practice (private.prescription_requester), and the caller must act for it.
-- It returns only that practice's own ticket of the appointment's patient. Idempotent, also
-- under concurrent calls. Its thread: chat_threads.ticket_id.
-- Raises 42501 when no user is signed in; CH008 when the appointment is not one the caller's
-- practice may prescribe for (the same answer whether it exists or not), when the
-- practitioner has several practices and no default (set_default_provider), when
-- p_pharmacy_id is not an active pharmacy, or when a ticket the caller's practice does not own
-- holds the appointment and pharmacy.
create or replace function private.get_or_create_prescription_ticket(
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
    -- Authorisation before anything about the appointment is told: a caller who shares no
    -- doctor or clinic provider with its practitioner gets the answer of a missing one.
    if not found or private.is_api_request() and not exists (
        select
        from public.provider_members as m
        inner join public.providers as p on m.provider_id = p.id
        where
            m.profile_id = v_reservation.profile_id
            and p.kind in ('doctor', 'clinic')
            and private.is_provider_member(m.provider_id)
    ) then
        raise exception 'appointment % is not an appointment of your practice (CH008)',
            p_appointment_id
            using errcode = 'CH008',
            hint = 'Pass the id of a reservation with a practitioner of your practice.';
    end if;
    v_primary_provider_id := private.prescription_requester(v_reservation.profile_id);
    if v_primary_provider_id is null then
        raise exception 'practitioner % acts for no doctor or clinic provider (CH008)',
            v_reservation.profile_id
            using errcode = 'CH008', hint = 'Add the practitioner to their practice first.';
    end if;
    if private.is_api_request() and not private.is_provider_member(v_primary_provider_id) then
        raise exception 'appointment % is not an appointment of your practice (CH008)',
            p_appointment_id
            using errcode = 'CH008',
            hint = 'The practitioner''s default practice creates its prescription tickets.';
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
        if v_ticket.primary_provider_id is distinct from v_primary_provider_id
            or v_ticket.patient_id is distinct from v_reservation.patient_id then
            -- Never returned: it is not this practice's ticket. It names the appointment,
            -- which the caller may know about, and nothing else.
            raise exception 'appointment % already has a prescription ticket for this pharmacy '
                'that your practice does not own (CH008)', p_appointment_id
                using errcode = 'CH008', hint = 'Ask an admin to cancel it.';
        end if;
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

create or replace function public.get_or_create_prescription_ticket(
    p_appointment_id uuid, p_pharmacy_id uuid
)
returns public.healthcare_tickets
language sql
set search_path = ''
as $fn$
    select private.get_or_create_prescription_ticket(p_appointment_id, p_pharmacy_id)
$fn$;

revoke execute on function private.prescription_requester(uuid) from public;
revoke execute on function private.get_or_create_prescription_ticket(uuid, uuid) from public;
grant execute on function private.get_or_create_prescription_ticket(uuid, uuid)
to authenticated, service_role;
revoke execute on function public.get_or_create_prescription_ticket(uuid, uuid)
from public, anon;
grant execute on function public.get_or_create_prescription_ticket(uuid, uuid)
to authenticated, service_role;
