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
