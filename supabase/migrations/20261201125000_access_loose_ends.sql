-- Loose ends of the access work (issue 8).
-- Rule 1: every caller of private.caller_ticket_roles passes the ticket row, so the fulfiller
-- counts by sent_at everywhere (the status trigger and the timeline still used the old
-- five-argument form, which guessed from the status and could not see sent_at); that form
-- goes, and so do private.can_read_prescription and private.is_prescription_ticket_party,
-- which nothing called and which judged the pharmacy by it.
-- Rule 9: a client cannot choose a prescription's id (an existing one answered 23505); the
-- booking RPCs give an unknown id and one the caller may not act on the same CH008 answer (an
-- unknown one was P0002), the system keeps the precise P0002.
-- Every definition below is the current one from functions-sql/ and policies/.

-- From functions-sql/tickets_status.sql
-- ------------------------------------------------------------------------------------------

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

-- From functions-sql/tickets_timeline.sql
-- ------------------------------------------------------------------------------------------

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
                private.caller_ticket_roles(p_new) || private.caller_ticket_roles(p_old)
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

-- The old helpers: no caller is left.
drop function private.can_read_prescription(uuid);
drop function private.is_prescription_ticket_party(uuid);
drop function private.caller_ticket_roles(text, text, uuid, uuid, uuid);

-- From policies/prescriptions.sql
-- ------------------------------------------------------------------------------------------

-- Not id: a client-chosen id would answer 23505 for one that exists (access issue, rule 9).
revoke insert (id) on public.prescriptions from authenticated;

-- From functions-sql/scheduling.sql
-- ------------------------------------------------------------------------------------------

create or replace function private.approve_reservation_request(p_request_id uuid)
returns public.reservation
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_request public.reservation_request;
    v_reservation public.reservation;
begin
    select r.* into v_request
    from public.reservation_request as r
    where r.id = p_request_id
    for update;
    if not found and not private.is_api_request() then
        raise exception 'reservation request % does not exist', p_request_id
            using errcode = 'P0002';
    elsif v_request.id is null or (
        private.is_api_request() and v_request.profile_id is distinct from (select auth.uid())
    ) then
        raise exception 'reservation request % is not one you can approve (CH008)',
            p_request_id
            using errcode = 'CH008',
            hint = 'Only the practitioner of the request''s slot approves it; check the id.';
    elsif v_request.status <> 'pending' then
        raise exception 'request % is already % (CH006)', p_request_id, v_request.status
            using errcode = 'CH006', hint = 'Only pending requests can be approved.';
    end if;
    update public.reservation_request
    set status = 'approved', approved_by = (select auth.uid())
    where id = p_request_id;
    select r.* into v_reservation
    from public.reservation as r
    where r.request_id = p_request_id;
    return v_reservation;
end
$fn$;

create or replace function private.reject_reservation_request(
    p_request_id uuid, p_reason text default null
)
returns public.reservation_request
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_request public.reservation_request;
begin
    select r.* into v_request
    from public.reservation_request as r
    where r.id = p_request_id
    for update;
    if not found and not private.is_api_request() then
        raise exception 'reservation request % does not exist', p_request_id
            using errcode = 'P0002';
    elsif v_request.id is null or (
        private.is_api_request() and v_request.profile_id is distinct from (select auth.uid())
    ) then
        raise exception 'reservation request % is not one you can reject (CH008)',
            p_request_id
            using errcode = 'CH008',
            hint = 'Only the practitioner of the request''s slot rejects it; check the id.';
    elsif v_request.status <> 'pending' then
        raise exception 'request % is already % (CH006)', p_request_id, v_request.status
            using errcode = 'CH006', hint = 'Only pending requests can be rejected.';
    end if;
    update public.reservation_request as r
    set status = 'rejected', rejection_reason = nullif(pg_catalog.btrim(p_reason), '')
    where r.id = p_request_id
    returning r.* into v_request;
    return v_request;
end
$fn$;

create or replace function private.cancel_reservation(
    p_reservation_id uuid, p_reason text default null
)
returns public.reservation
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_reservation public.reservation;
begin
    select r.* into v_reservation
    from public.reservation as r
    where r.id = p_reservation_id
    for update;
    if not found and not private.is_api_request() then
        raise exception 'reservation % does not exist', p_reservation_id
            using errcode = 'P0002';
    elsif v_reservation.id is null or (
        private.is_api_request()
        and (select auth.uid()) is distinct from v_reservation.profile_id
        and (select auth.uid()) is distinct from v_reservation.patient_id
    ) then
        raise exception 'reservation % is not one you can cancel (CH008)', p_reservation_id
            using errcode = 'CH008',
            hint = 'Only the reservation''s practitioner or patient cancels it; check the id.';
    elsif v_reservation.status <> 'confirmed' then
        raise exception 'reservation % is %; only a confirmed reservation can be cancelled '
            '(CH001)', p_reservation_id, v_reservation.status
            using errcode = 'CH001';
    end if;
    update public.reservation as r
    set status = 'cancelled', cancellation_reason = nullif(pg_catalog.btrim(p_reason), '')
    where r.id = p_reservation_id
    returning r.* into v_reservation;
    return v_reservation;
end
$fn$;

create or replace function private.block_time_slot(p_slot_id uuid)
returns public.time_slot
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_slot public.time_slot;
    v_confirmed integer;
begin
    select s.* into v_slot from public.time_slot as s where s.id = p_slot_id;
    if not found and not private.is_api_request() then
        raise exception 'time slot % does not exist', p_slot_id using errcode = 'P0002';
    elsif v_slot.id is null or (
        private.is_api_request() and v_slot.profile_id is distinct from (select auth.uid())
    ) then
        raise exception 'time slot % is not one you can block (CH008)', p_slot_id
            using errcode = 'CH008', hint = 'Only the slot''s practitioner blocks it; check the id.';
    end if;
    -- Lock order of the booking functions: requests first, then their slot. A request that
    -- arrives once the slot is locked waits, then finds it blocked (CH005).
    perform
    from public.reservation_request as r
    where r.slot_id = p_slot_id and r.status = 'pending'
    order by r.id
    for update;
    select s.* into v_slot from public.time_slot as s where s.id = p_slot_id for update;
    if v_slot.status = 'blocked' then
        return v_slot;
    end if;

    with rejected as (
        update public.reservation_request as r
        set
            status = 'rejected',
            rejection_reason = 'The practitioner blocked this time slot.'
        where r.slot_id = p_slot_id and r.status = 'pending'
        returning r.id, r.patient_id, r.requested_time
    )

    insert into public.notifications (recipient_id, type, title, body, data)
    select
        rejected.patient_id,
        'reservation_request_rejected',
        'Your appointment request was declined',
        'The practitioner is not available at the time you asked for. Please choose another '
        || 'time.',
        pg_catalog.jsonb_build_object(
            'request_id', rejected.id,
            'slot_id', p_slot_id,
            'requested_time', rejected.requested_time
        )
    from rejected
    where rejected.patient_id is not null;

    update public.time_slot as s set status = 'blocked'
    where s.id = p_slot_id
    returning s.* into v_slot;
    v_confirmed := v_slot.current_reservations;
    if v_confirmed > 0 then
        raise notice 'time slot % is blocked; its % confirmed reservation(s) stay booked',
            p_slot_id, v_confirmed
            using hint = 'Cancel them with cancel_reservation if the appointments cannot '
            || 'take place.';
    end if;
    return v_slot;
end
$fn$;

create or replace function private.unblock_time_slot(p_slot_id uuid)
returns public.time_slot
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_slot public.time_slot;
begin
    select s.* into v_slot from public.time_slot as s where s.id = p_slot_id for update;
    if not found and not private.is_api_request() then
        raise exception 'time slot % does not exist', p_slot_id using errcode = 'P0002';
    elsif v_slot.id is null or (
        private.is_api_request() and v_slot.profile_id is distinct from (select auth.uid())
    ) then
        raise exception 'time slot % is not one you can unblock (CH008)', p_slot_id
            using errcode = 'CH008',
            hint = 'Only the slot''s practitioner unblocks it; check the id.';
    end if;
    update public.time_slot as s set status = 'available'
    where s.id = p_slot_id
    returning s.* into v_slot;
    return v_slot;
end
$fn$;
