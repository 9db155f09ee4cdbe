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
