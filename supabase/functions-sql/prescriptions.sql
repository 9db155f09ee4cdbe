-- Prescriptions: clinical fields frozen once the prescription's ticket is sent, and sent_at,
-- which opens it to the pharmacy. The doctor's entry point, get_or_create_prescription_ticket,
-- is in prescription_tickets.sql.

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

revoke execute on function private.freeze_sent_prescription() from public;
revoke execute on function private.freeze_sent_prescription_items() from public;
revoke execute on function private.mark_prescription_sent() from public;
revoke execute on function private.is_prescribing_doctor(uuid) from public;
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
