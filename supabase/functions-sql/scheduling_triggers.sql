-- Scheduling triggers: they keep time_slot status and capacity true as requests and
-- reservations are created, decided, cancelled or deleted; and updated_at on its tables.

-- Triggers: time_slot ----------------------------------------------------------------------

-- Keeps a slot's status true (see private.time_slot_status); a new slot starts empty and must
-- use one of its practitioner's own services. Blocking is refused while holds are pending (a
-- blocked slot never leaves a patient waiting: block_time_slot rejects them first); confirmed
-- reservations stay, counted in current_reservations.
-- Raises 23514 (service of another practitioner), CH001 (blocking a slot with pending holds).
create or replace function private.maintain_time_slot()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if tg_op = 'INSERT' then
        new.current_reservations := 0;
        new.pending_requests := 0;
        new.expires_at := null;
        if not exists (
            select from public.medical_service as m
            where m.id = new.service_id and m.profile_id = new.profile_id
        ) then
            raise exception 'service % is not a service of practitioner %',
                new.service_id, new.profile_id
                using errcode = '23514',
                hint = 'Create slots for one of the practitioner''s own services.';
        end if;
    elsif new.status = 'blocked' and old.status <> 'blocked' and old.pending_requests > 0 then
        raise exception 'time slot % has % pending request(s); it cannot be blocked (CH001)',
            old.id, old.pending_requests
            using errcode = 'CH001',
            hint = 'Call block_time_slot, which rejects the pending requests first.';
    end if;
    new.status := private.time_slot_status(
        new.status, new.start_time, new.current_reservations, new.max_reservations,
        new.pending_requests
    );
    return new;
end
$fn$;

-- Triggers: reservation_request ------------------------------------------------------------

-- A new request holds a place of its slot until it is decided or expires. It takes its
-- practitioner, service and requested time from the slot, and its hold never outlives the
-- slot's start. Raises CH001 (not pending), 22023 (slot of another practitioner or service),
-- and whatever private.claim_time_slot_place raises.
create or replace function private.hold_time_slot_place()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_slot public.time_slot;
begin
    if new.status <> 'pending' then
        raise exception 'a reservation request starts as pending, not % (CH001)', new.status
            using errcode = 'CH001',
            hint = 'Insert it as pending, then approve or reject it.';
    end if;
    new.expires_at := coalesce(new.expires_at, pg_catalog.now() + interval '30 minutes');
    v_slot := private.claim_time_slot_place(new.slot_id, new.expires_at);
    if new.profile_id is distinct from v_slot.profile_id and new.profile_id is not null
        or new.service_id is distinct from v_slot.service_id and new.service_id is not null then
        raise exception 'request names practitioner % and service %, but slot % is of % and %',
            new.profile_id, new.service_id, new.slot_id, v_slot.profile_id, v_slot.service_id
            using errcode = '22023', hint = 'Leave profile_id and service_id to the slot.';
    end if;
    new.profile_id := v_slot.profile_id;
    new.service_id := v_slot.service_id;
    new.requested_time := v_slot.start_time;
    new.expires_at := least(new.expires_at, v_slot.start_time);
    return new;
end
$fn$;

-- A request moves only from pending, to approved, rejected or expired, and can be approved
-- only while its hold lasts. Raises CH007 (slot, practitioner, service or patient changed; the
-- patient may only become null, when their account is deleted), CH006 (no longer pending, or
-- hold expired).
create or replace function private.enforce_reservation_request_transition()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    if new.slot_id is distinct from old.slot_id
        or new.profile_id is distinct from old.profile_id
        or new.service_id is distinct from old.service_id
        or new.patient_id is distinct from old.patient_id and new.patient_id is not null then
        raise exception 'the slot, practitioner, service and patient of request % cannot change '
            '(CH007)', old.id
            using errcode = 'CH007', hint = 'Request another slot instead.';
    end if;
    if new.status is not distinct from old.status then
        return new;
    end if;
    if old.status <> 'pending' then
        raise exception 'request % is already % (CH006)', old.id, old.status
            using errcode = 'CH006',
            hint = 'Only pending requests can be approved, rejected or expired.';
    end if;
    if new.status = 'approved' then
        -- clock_timestamp, not now(): the hold is judged when the row is locked, however long
        -- the approving transaction has been open.
        if old.expires_at <= pg_catalog.clock_timestamp() then
            raise exception 'the hold of request % expired at % (CH006)', old.id, old.expires_at
                using errcode = 'CH006', hint = 'Ask the patient to request a slot again.';
        end if;
        new.approved_at := coalesce(new.approved_at, pg_catalog.now());
    end if;
    return new;
end
$fn$;

-- A decided request gives back its hold; an approved one becomes a confirmed reservation in
-- the same statement (the slot row stays locked in between, so nobody takes the place).
create or replace function private.apply_reservation_request_decision()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.release_time_slot_place(old.slot_id, true);
    if new.status = 'approved' then
        insert into public.reservation (
            profile_id, slot_id, service_id, request_id, patient_id, patient_name,
            patient_phone, patient_email, source, price_at_booking
        )
        select
            new.profile_id,
            new.slot_id,
            new.service_id,
            new.id,
            new.patient_id,
            new.patient_name,
            new.patient_phone,
            new.patient_email,
            -- Patients with an account book on the web; the others come through WhatsApp.
            case when new.patient_id is null then 'whatsapp' else 'web' end,
            m.price
        from public.medical_service as m
        where m.id = new.service_id;
    end if;
    return null;
end
$fn$;

-- A pending request that is deleted gives back its hold.
create or replace function private.release_deleted_request_hold()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.release_time_slot_place(old.slot_id, true);
    return null;
end
$fn$;

-- Triggers: reservation --------------------------------------------------------------------

-- A new reservation is confirmed and takes a place of its slot; it takes its practitioner and
-- service from the slot. Raises CH001 (not confirmed), 22023 (slot of another practitioner or
-- service), and whatever private.claim_time_slot_place raises.
create or replace function private.claim_reservation_place()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_slot public.time_slot;
begin
    if new.status <> 'confirmed' then
        raise exception 'a reservation starts as confirmed, not % (CH001)', new.status
            using errcode = 'CH001', hint = 'Insert it as confirmed, then change its status.';
    end if;
    v_slot := private.claim_time_slot_place(new.slot_id, null);
    if new.profile_id is distinct from v_slot.profile_id and new.profile_id is not null
        or new.service_id is distinct from v_slot.service_id and new.service_id is not null then
        raise exception 'reservation names practitioner % and service %, but slot % is of % '
            'and %', new.profile_id, new.service_id, new.slot_id, v_slot.profile_id,
            v_slot.service_id
            using errcode = '22023', hint = 'Leave profile_id and service_id to the slot.';
    end if;
    new.profile_id := v_slot.profile_id;
    new.service_id := v_slot.service_id;
    new.no_show := false;
    return new;
end
$fn$;

-- A reservation moves only from confirmed, to cancelled, completed or no_show; the matching
-- timestamp and the no_show flag follow the status. Raises CH007 (slot, practitioner, service,
-- request or patient changed; request and patient may only become null, when the request or
-- the patient's account is deleted), CH001 (any other status change).
create or replace function private.enforce_reservation_transition()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    if new.slot_id is distinct from old.slot_id
        or new.profile_id is distinct from old.profile_id
        or new.service_id is distinct from old.service_id
        or new.request_id is distinct from old.request_id and new.request_id is not null
        or new.patient_id is distinct from old.patient_id and new.patient_id is not null then
        raise exception 'the slot, practitioner, service, request and patient of reservation % '
            'cannot change (CH007)', old.id
            using errcode = 'CH007', hint = 'Cancel it and book the other slot instead.';
    end if;
    if new.status is distinct from old.status then
        if old.status <> 'confirmed'
            or new.status not in ('cancelled', 'completed', 'no_show') then
            raise exception 'reservation % cannot go from % to % (CH001)',
                old.id, old.status, new.status
                using errcode = 'CH001',
                hint = 'Only a confirmed reservation changes: to cancelled, completed or no_show.';
        end if;
        if new.status = 'cancelled' then
            new.cancelled_at := coalesce(new.cancelled_at, pg_catalog.now());
        elsif new.status = 'completed' then
            new.completed_at := coalesce(new.completed_at, pg_catalog.now());
        end if;
    end if;
    new.no_show := new.status = 'no_show';
    return new;
end
$fn$;

-- A cancelled (or deleted, still counted) reservation gives back its place. A completed or
-- no-show reservation keeps it: the place was used.
create or replace function private.release_reservation_place()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.release_time_slot_place(old.slot_id, false);
    return null;
end
$fn$;

revoke execute on function private.maintain_time_slot() from public;
revoke execute on function private.hold_time_slot_place() from public;
revoke execute on function private.enforce_reservation_request_transition() from public;
revoke execute on function private.apply_reservation_request_decision() from public;
revoke execute on function private.release_deleted_request_hold() from public;
revoke execute on function private.claim_reservation_place() from public;
revoke execute on function private.enforce_reservation_transition() from public;
revoke execute on function private.release_reservation_place() from public;

-- Triggers ---------------------------------------------------------------------------------

drop trigger if exists maintain_time_slot on public.time_slot;
create trigger maintain_time_slot
before insert or update on public.time_slot
for each row execute function private.maintain_time_slot();

drop trigger if exists hold_time_slot_place on public.reservation_request;
create trigger hold_time_slot_place
before insert on public.reservation_request
for each row execute function private.hold_time_slot_place();

drop trigger if exists enforce_reservation_request_transition on public.reservation_request;
create trigger enforce_reservation_request_transition
before update on public.reservation_request
for each row execute function private.enforce_reservation_request_transition();

drop trigger if exists apply_reservation_request_decision on public.reservation_request;
create trigger apply_reservation_request_decision
after update of status on public.reservation_request
for each row
when (old.status = 'pending' and new.status <> 'pending')
execute function private.apply_reservation_request_decision();

drop trigger if exists release_deleted_request_hold on public.reservation_request;
create trigger release_deleted_request_hold
after delete on public.reservation_request
for each row when (old.status = 'pending')
execute function private.release_deleted_request_hold();

drop trigger if exists claim_reservation_place on public.reservation;
create trigger claim_reservation_place
before insert on public.reservation
for each row execute function private.claim_reservation_place();

drop trigger if exists enforce_reservation_transition on public.reservation;
create trigger enforce_reservation_transition
before update on public.reservation
for each row execute function private.enforce_reservation_transition();

drop trigger if exists release_cancelled_reservation_place on public.reservation;
create trigger release_cancelled_reservation_place
after update of status on public.reservation
for each row
when (old.status <> 'cancelled' and new.status = 'cancelled')
execute function private.release_reservation_place();

drop trigger if exists release_deleted_reservation_place on public.reservation;
create trigger release_deleted_reservation_place
after delete on public.reservation
for each row when (old.status <> 'cancelled')
execute function private.release_reservation_place();

drop trigger if exists set_updated_at on public.medical_service;
create trigger set_updated_at
before update on public.medical_service
for each row execute function private.set_updated_at();

drop trigger if exists set_updated_at on public.availability_rule;
create trigger set_updated_at
before update on public.availability_rule
for each row execute function private.set_updated_at();

drop trigger if exists set_updated_at on public.reservation_request;
create trigger set_updated_at
before update on public.reservation_request
for each row execute function private.set_updated_at();

drop trigger if exists set_updated_at on public.reservation;
create trigger set_updated_at
before update on public.reservation
for each row execute function private.set_updated_at();

drop trigger if exists set_updated_at on public.appointment_note;
create trigger set_updated_at
before update on public.appointment_note
for each row execute function private.set_updated_at();
