-- Backfill of legacy chat threads (scripts/migrate_threads_to_tickets.py): backfill_thread_plan,
-- mapping legacy threads to ticket decisions (rules: README, "Backfilling legacy threads").

-- backfill_thread_plan(p_thread_ids) returns setof private.backfill_decision
-- What the backfill does with each of the legacy threads p_thread_ids that still has no ticket
-- (ticket_id null and not recorded in any ticket's legacy_thread_id; others are left out):
-- 'create' a prescription ticket, 'link' the thread to the live ticket of the same appointment
-- and pharmacy, or 'skip' it with a reason. Reads only: the dry run is this function alone.
-- Ticket ids of 'create' decisions are drawn here, so every later step of the batch names them.
create or replace function private.backfill_thread_plan(p_thread_ids uuid[])
returns setof private.backfill_decision
language sql volatile
set search_path = ''
as $fn$
    -- Materialised: the ids metadata names are parsed once per thread, not once per row the
    -- lookups below scan.
    with threads as materialized (
        select th.id, th.order_id, th.order_type, th.title, th.metadata, th.created_by,
            th.created_at, th.updated_at,
            case
                when th.metadata ->> 'target_id'
                    ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                    then (th.metadata ->> 'target_id')::uuid
            end as target_uuid,
            case
                when th.metadata ->> 'prescription_id'
                    ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                    then (th.metadata ->> 'prescription_id')::uuid
            end as named_prescription_id
        from public.chat_threads as th
        where
            th.id = any(p_thread_ids)
            and th.ticket_id is null
            and not exists (
                select from public.healthcare_tickets as t where t.legacy_thread_id = th.id
            )
    ),

    -- Who the thread is about and between: patient, requester and fulfiller.
    parties as (
        select
            th.*,
            r.id as reservation_id,
            r.patient_id as reservation_patient_id,
            r.profile_id as practitioner_id,
            r.patient_name,
            members.patient_ids,
            members.doctor_ids,
            target.raw as target_raw,
            target.pharmacy_ids
        from threads as th
        left join public.reservation as r on th.order_id = r.id
        cross join lateral (
            select
                coalesce(array_agg(m.profile_id order by m.profile_id)
                    filter (where p.role = 'patient'), '{}') as patient_ids,
                coalesce(array_agg(m.profile_id order by m.profile_id)
                    filter (where p.role = 'doctor'), '{}') as doctor_ids
            from public.chat_thread_members as m
            inner join public.profile as p on m.profile_id = p.id
            where m.thread_id = th.id
        ) as members
        -- target_id names the pharmacy itself, or (old rows) a pharmacist's user id.
        cross join lateral (
            select
                th.metadata ->> 'target_id' as raw,
                coalesce(direct.ids, via.ids, '{}') as pharmacy_ids
            from (select th.target_uuid) as t
            left join lateral (
                select array[pv.id] as ids from public.providers as pv
                where pv.id = t.target_uuid and pv.kind = 'pharmacy'
            ) as direct on true
            left join lateral (
                select array_agg(distinct pm.provider_id order by pm.provider_id) as ids
                from public.provider_members as pm
                inner join public.providers as pv on pm.provider_id = pv.id
                where pm.profile_id = t.target_uuid and pv.kind = 'pharmacy'
                having count(*) > 0
            ) as via on true
        ) as target
    ),

    resolved as (
        select
            pa.*,
            case
                when pa.reservation_patient_id is not null then pa.reservation_patient_id
                when pg_catalog.cardinality(pa.patient_ids) = 1 then pa.patient_ids[1]
            end as patient_id,
            pg_catalog.cardinality(pa.patient_ids) as patient_count,
            -- The prescriber: the reservation's practitioner, else the one doctor among the
            -- members (several: ambiguous).
            case
                when pa.practitioner_id is not null then pa.practitioner_id
                when pg_catalog.cardinality(pa.doctor_ids) = 1 then pa.doctor_ids[1]
            end as opener_id,
            pa.practitioner_id is null and pg_catalog.cardinality(pa.doctor_ids) > 1
                as doctors_ambiguous,
            case when pg_catalog.cardinality(pa.pharmacy_ids) = 1 then pa.pharmacy_ids[1] end
                as pharmacy_id
        from parties as pa
    ),

    -- The requester by get_or_create_prescription_ticket's rule (private.prescription_requester):
    -- the prescriber's default practice when it is one of their doctor or clinic providers,
    -- else their only one; several and no default is ambiguous.
    requesters as (
        select
            re.*,
            opener.role as opener_role,
            req.provider_ids as requester_ids,
            case
                when u.default_provider_id = any(req.provider_ids) then u.default_provider_id
                when pg_catalog.cardinality(req.provider_ids) = 1 then req.provider_ids[1]
            end as primary_provider_id
        from resolved as re
        left join public.profile as opener on re.opener_id = opener.id
        left join public.profile as u on re.opener_id = u.id
        cross join lateral (
            select coalesce(array_agg(m.provider_id order by m.provider_id), '{}') as provider_ids
            from public.provider_members as m
            inner join public.providers as pv on m.provider_id = pv.id
            where m.profile_id = re.opener_id and pv.kind in ('doctor', 'clinic')
        ) as req
    ),

    -- The prescription: metadata.prescription_id, else the one of the same appointment and
    -- pharmacy.
    prescriptions as (
        select
            rq.*,
            rx.id as rx_id,
            rx.patient_id as rx_patient_id,
            rx.pharmacy_id as rx_pharmacy_id,
            rx.doctor_id as rx_doctor_id,
            rx.created_at as rx_created_at,
            rx.external_order_id,
            rx.rx_number,
            rx_count.n as rx_candidates
        from requesters as rq
        cross join lateral (select rq.named_prescription_id as named_id) as named
        cross join lateral (
            select count(*) as n from public.prescriptions as c
            where
                named.named_id is null
                and c.appointment_id = rq.order_id
                and c.pharmacy_id = rq.pharmacy_id
        ) as rx_count
        left join lateral (
            select c.* from public.prescriptions as c
            where
                c.id = named.named_id
                or (
                    named.named_id is null
                    and rx_count.n = 1
                    and c.appointment_id = rq.order_id
                    and c.pharmacy_id = rq.pharmacy_id
                )
            limit 1
        ) as rx on true
    ),

    checked as (
        select
            px.*,
            -- The access issue's appointment rule (private.check_ticket_appointment): a
            -- reservation of this patient with a member of the requester.
            px.reservation_id is not null and px.patient_id is not null and exists (
                select from public.provider_members as m
                where m.provider_id = px.primary_provider_id and m.profile_id = px.practitioner_id
            ) and px.reservation_patient_id = px.patient_id as appointment_ok,
            exists (
                select from public.ticket_openers as o
                inner join public.providers as pv on o.provider_kind = pv.kind
                where
                    o.ticket_type = 'prescription'
                    and o.opener_role = px.opener_role
                    and pv.id = px.primary_provider_id
            ) as opener_ok,
            -- The CH004 rule (private.prescription_link_problem, which words the warning).
            px.rx_id is not null
            and px.rx_patient_id is not distinct from px.patient_id
            and px.rx_pharmacy_id is not distinct from px.pharmacy_id
            and exists (
                select from public.provider_members as m
                where m.provider_id = px.primary_provider_id and m.profile_id = px.rx_doctor_id
            ) as rx_matches,
            px.rx_id is not null and exists (
                select from public.healthcare_tickets as t where t.prescription_id = px.rx_id
            ) as rx_linked,
            -- The access issue's order-id rule: a Lifefile order id (and an rx number within
            -- one pharmacy) names one live prescription. Another prescription holding it, unless
            -- its ticket is cancelled or failed, makes this one not linkable.
            px.rx_id is not null and (
                px.external_order_id is not null and exists (
                    select from public.prescriptions as o
                    where
                        o.external_order_id = px.external_order_id
                        and o.id <> px.rx_id
                        and not exists (
                            select from public.healthcare_tickets as t
                            where t.prescription_id = o.id and t.status in ('cancelled', 'failed')
                        )
                )
                or px.rx_number is not null and exists (
                    select from public.prescriptions as o
                    where
                        o.pharmacy_id = px.pharmacy_id
                        and o.rx_number = px.rx_number
                        and o.id <> px.rx_id
                        and not exists (
                            select from public.healthcare_tickets as t
                            where t.prescription_id = o.id and t.status in ('cancelled', 'failed')
                        )
                )
            ) as order_id_taken
        from prescriptions as px
    ),

    decided as (
        select
            ch.*,
            case
                when ch.order_type is distinct from 'prescription' then 'unsupported order type'
                when ch.patient_count = 0 and ch.reservation_patient_id is null then 'no patient'
                when ch.patient_id is null then 'ambiguous patient'
                when ch.doctors_ambiguous then 'ambiguous requester'
                when ch.opener_id is null then 'no requester'
                when pg_catalog.cardinality(ch.requester_ids) > 1
                    and ch.primary_provider_id is null then 'ambiguous requester'
                when ch.primary_provider_id is null then 'no requester'
                when not ch.opener_ok then 'requester may not open prescriptions'
                -- A kept appointment is a care relationship already.
                when not ch.appointment_ok and not private.has_care_relationship(
                    ch.primary_provider_id, ch.patient_id
                ) then 'no care relationship'
                when pg_catalog.cardinality(ch.pharmacy_ids) > 1 then 'ambiguous pharmacy'
                when ch.pharmacy_id is null then 'unknown pharmacy'
            end as skip_reason,
            ch.rx_matches and not ch.rx_linked and not ch.order_id_taken as rx_fits,
            case
                when ch.rx_id is not null and not ch.rx_matches
                    then private.prescription_link_problem(
                        ch.rx_id, ch.patient_id, ch.primary_provider_id, ch.pharmacy_id
                    )
            end as rx_problem
        from checked as ch
    ),

    -- An existing live ticket of the same appointment and pharmacy (created by
    -- get_or_create_prescription_ticket during the rollout) takes the thread as its legacy one.
    existing as (
        select
            d.*,
            live.id as live_ticket_id,
            live.legacy_thread_id as live_legacy_thread_id,
            live.patient_id as live_patient_id,
            live.primary_provider_id as live_primary_provider_id
        from decided as d
        left join lateral (
            select t.* from public.healthcare_tickets as t
            where
                d.skip_reason is null
                and d.appointment_ok
                and t.appointment_id = d.order_id
                and t.secondary_provider_id = d.pharmacy_id
                and t.ticket_type = 'prescription'
                and t.status not in ('cancelled', 'failed')
            -- One at most (healthcare_tickets_one_prescription_per_pharmacy_idx), found by that
            -- index: an order by here would walk the pharmacy's tickets by date instead.
        ) as live on true
    ),

    -- Two legacy threads of one appointment and pharmacy: the older one takes the ticket. Two
    -- claiming one prescription: the older one links it.
    ranked as (
        select
            e.*,
            case
                when e.skip_reason is null and e.appointment_ok then pg_catalog.row_number() over (
                    partition by e.skip_reason is null and e.appointment_ok, e.order_id, e.pharmacy_id
                    order by e.created_at, e.id
                )
                else 1
            end as key_rank,
            case
                when e.skip_reason is null and e.rx_fits then pg_catalog.row_number() over (
                    partition by e.skip_reason is null and e.rx_fits, e.rx_id
                    order by e.created_at, e.id
                )
                else 1
            end as rx_rank
        from existing as e
    ),

    final as (
        select
            rk.*,
            case
                when rk.skip_reason is not null then rk.skip_reason
                when rk.key_rank > 1 then 'duplicate thread'
                when rk.live_ticket_id is not null and rk.live_legacy_thread_id is not null
                    then 'duplicate thread'
                when rk.live_ticket_id is not null and (
                    rk.live_patient_id is distinct from rk.patient_id
                    or rk.live_primary_provider_id is distinct from rk.primary_provider_id
                ) then 'conflicting ticket'
            end as reason,
            rk.rx_fits and rk.rx_rank = 1 and rk.live_ticket_id is null as link_rx,
            history.event_ids,
            history.final_status,
            history.closed_at
        from ranked as rk
        -- The pharmacy's history already in the inbox for this prescription (it arrived with
        -- no ticket to match): the ticket starts where it leads, moving forward only and
        -- stopping at the first final status, as processing would have moved it.
        left join lateral (
            select
                array_agg(h.event_id order by h.occurred_at, h.seq) as event_ids,
                coalesce(
                    (array_agg(h.status order by h.occurred_at, h.seq)
                        filter (where h.is_terminal))[1],
                    (array_agg(h.status order by h.status_rank desc, h.occurred_at)
                        filter (where h.status_rank > 10))[1]
                ) as final_status,
                min(h.occurred_at) filter (where h.is_terminal) as closed_at
            -- Only a linked prescription with a Lifefile order or rx number has a history:
            -- the guard row keeps the history lookup from running for the others.
            from (
                select
                where
                    rk.rx_fits and rk.rx_rank = 1 and rk.live_ticket_id is null
                    and (rk.external_order_id is not null or rk.rx_number is not null)
            ) as guard
            cross join lateral private.backfill_lifefile_history(array(
                select e.id from private.lifefile_webhook_events as e
                where e.status = 'unmatched' and e.order_id = rk.external_order_id
                union
                select e.id from private.lifefile_webhook_events as e
                where e.status = 'unmatched' and e.rx_number = rk.rx_number
                union
                select e.id from private.lifefile_webhook_events as e
                where
                    e.status = 'pending'
                    and (e.order_id = rk.external_order_id or e.rx_number = rk.rx_number)
            )) as h
            having count(*) > 0
        ) as history on true
    )

    select
        f.id,
        f.order_id,
        f.order_type,
        case
            when f.reason is not null then 'skip'
            when f.live_ticket_id is not null then 'link'
            else 'create'
        end,
        f.reason,
        case f.reason
            when 'unsupported order type' then pg_catalog.format(
                'order_type %s: only prescription threads become tickets',
                coalesce(pg_catalog.quote_literal(f.order_type), 'null')
            )
            when 'no patient' then 'no reservation patient and no member with role patient'
            when 'ambiguous patient' then pg_catalog.format(
                '%s members with role patient: %s', f.patient_count,
                pg_catalog.array_to_string(f.patient_ids, ' ')
            )
            when 'ambiguous requester' then case
                when f.doctors_ambiguous then pg_catalog.format(
                    'no reservation and %s doctors among the members: %s',
                    pg_catalog.cardinality(f.doctor_ids),
                    pg_catalog.array_to_string(f.doctor_ids, ' ')
                )
                else pg_catalog.format(
                    'practitioner %s acts for %s practices and has no default: %s',
                    f.opener_id, pg_catalog.cardinality(f.requester_ids),
                    pg_catalog.array_to_string(f.requester_ids, ' ')
                )
            end
            when 'no requester' then case
                when f.opener_id is null then 'no reservation and no doctor among the members'
                else pg_catalog.format('practitioner %s acts for no doctor or clinic', f.opener_id)
            end
            when 'requester may not open prescriptions' then pg_catalog.format(
                'profile %s (role %s) may not open prescription tickets (ticket_openers)',
                f.opener_id, f.opener_role
            )
            when 'no care relationship' then pg_catalog.format(
                'provider %s has no reservation or ticket with patient %s',
                f.primary_provider_id, f.patient_id
            )
            when 'ambiguous pharmacy' then pg_catalog.format(
                'target_id %s is a member of several pharmacies: %s', f.target_raw,
                pg_catalog.array_to_string(f.pharmacy_ids, ' ')
            )
            when 'unknown pharmacy' then pg_catalog.format(
                'target_id %s is neither a pharmacy nor a pharmacy member',
                coalesce(f.target_raw, 'missing')
            )
            when 'duplicate thread' then pg_catalog.format(
                'appointment %s and pharmacy %s already have their legacy thread%s',
                f.order_id, f.pharmacy_id,
                coalesce(' ' || f.live_legacy_thread_id::text, ' (an older one in this batch)')
            )
            when 'conflicting ticket' then pg_catalog.format(
                'ticket %s of appointment %s and pharmacy %s has other parties',
                f.live_ticket_id, f.order_id, f.pharmacy_id
            )
        end,
        -- Warnings of a migrated thread.
        case when f.reason is null then coalesce((
            select pg_catalog.jsonb_agg(w.warning)
            from (
                select pg_catalog.jsonb_build_object(
                    'reason', 'appointment not kept',
                    'detail', case
                        when f.order_id is null then 'the thread has no order_id'
                        when f.reservation_id is null then pg_catalog.format(
                            'order_id %s is not a reservation', f.order_id
                        )
                        else pg_catalog.format(
                            'reservation %s is not of this patient with a member of provider %s',
                            f.order_id, f.primary_provider_id
                        )
                    end
                ) as warning
                where not f.appointment_ok and f.live_ticket_id is null
                union all
                select pg_catalog.jsonb_build_object(
                    'reason', case
                        when f.rx_problem is not null or f.rx_id is null
                            then 'prescription does not fit'
                        when f.rx_linked or f.rx_rank > 1 then 'prescription already linked'
                        else 'order id not unique'
                    end,
                    'detail', case
                        when f.rx_id is null then pg_catalog.format(
                            'metadata.prescription_id %s is not a prescription',
                            f.metadata ->> 'prescription_id'
                        )
                        when f.rx_problem is not null then f.rx_problem
                        when f.rx_linked or f.rx_rank > 1 then pg_catalog.format(
                            'prescription %s belongs to another ticket or thread', f.rx_id
                        )
                        else pg_catalog.format(
                            'Lifefile order %s / rx %s of prescription %s is held by another '
                            'live prescription', coalesce(f.external_order_id, '-'),
                            coalesce(f.rx_number, '-'), f.rx_id
                        )
                    end
                )
                where
                    f.live_ticket_id is null
                    and not f.link_rx
                    and (f.metadata ? 'prescription_id' or f.rx_id is not null)
                union all
                select pg_catalog.jsonb_build_object(
                    'reason', 'ambiguous prescription',
                    'detail', pg_catalog.format(
                        '%s prescriptions of appointment %s for pharmacy %s: none linked',
                        f.rx_candidates, f.order_id, f.pharmacy_id
                    )
                )
                where f.live_ticket_id is null and f.rx_id is null and f.rx_candidates > 1
                union all
                -- A ticket inserted as cancelled counts as never sent (no fulfiller, no
                -- tracking): its Lifefile events stay in the inbox for an operator.
                select pg_catalog.jsonb_build_object(
                    'reason', 'history ends cancelled',
                    'detail', pg_catalog.format(
                        'Lifefile cancelled order %s: the ticket starts cancelled, its %s '
                        'events are left unmatched', f.external_order_id,
                        pg_catalog.cardinality(f.event_ids)
                    )
                )
                where f.link_rx and f.final_status = 'cancelled'
            ) as w
        ), '[]') end,
        case
            when f.reason is not null then null
            when f.live_ticket_id is not null then f.live_ticket_id
            else pg_catalog.gen_random_uuid()
        end,
        f.patient_id,
        f.primary_provider_id,
        f.pharmacy_id,
        case when f.appointment_ok then f.order_id end,
        case when f.link_rx then f.rx_id end,
        case
            when not f.link_rx then 'created'
            else coalesce(f.final_status, 'sent')
        end,
        coalesce(f.title, 'Prescription for ' || f.patient_name),
        f.created_by,
        f.created_at,
        f.updated_at,
        case when f.link_rx then f.rx_created_at end,
        case when f.link_rx then f.closed_at end,
        case when f.link_rx and f.final_status is distinct from 'cancelled' then f.event_ids end
    from final as f
    order by f.id
$fn$;

revoke execute on function private.backfill_thread_plan(uuid[]) from public;
