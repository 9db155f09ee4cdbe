-- Set-based ticket triggers and a backfill batch whose cost does not grow with the database.
-- A statement inserting many tickets (the legacy-thread backfill, 1,000 per batch) pays once
-- per statement, not once per ticket: a new ticket's thread (and its members), its 'created'
-- timeline row and its prescription tracking row (sent when the ticket was) are written by
-- statement-level triggers over the inserted rows. A ticket the backfill writes for a legacy
-- thread takes that thread as its own (no empty thread made and deleted); protect_ticket_thread
-- keeps the values the ticket's keys replace (legacy_target_id, legacy_prescription_id).
-- timeline_actor_kind is PL/pgSQL (planned once per session); fulfillment_fact_rows tells the
-- planner it returns a handful of rows. The backfill plan parses metadata ids once per thread
-- and finds a live ticket by its unique index (it walked the pharmacy's tickets by date, so
-- batches slowed as tickets accumulated); the batch updates tracking only for tickets with
-- Lifefile history and probes messages only for removed members. Functions and triggers as in
-- supabase/functions-sql/{tickets_threads,tickets_timeline,lifefile_tracking,analytics_facts,
-- backfill_plan,backfill_batch}.sql.

drop trigger create_ticket_thread on public.healthcare_tickets;
drop function private.create_ticket_thread();
drop trigger record_ticket_created on public.healthcare_tickets;
drop function private.record_ticket_created();
drop trigger track_prescription_ticket on public.healthcare_tickets;

-- The thread keeps the replaced values itself now (protect_ticket_thread).
alter type private.backfill_decision
drop attribute legacy_target_id,
drop attribute legacy_prescription_id;

-- Trigger (healthcare_tickets, after insert, for each statement): every new ticket gets its
-- thread, and the threads' members are synced once for the whole statement (a bulk insert pays
-- one statement, not one per ticket). A ticket the backfill writes (app.source = 'backfill')
-- for a legacy thread with no ticket takes that thread as its own: the thread keeps its
-- messages, order_id and metadata (protect_ticket_thread adds the ticket's keys and keeps the
-- values they replace).
create or replace function private.create_ticket_threads()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if private.request_source() = 'backfill' then
        update public.chat_threads as th
        set ticket_id = n.id
        from new_tickets as n
        where th.id = n.legacy_thread_id and th.ticket_id is null;
    end if;

    insert into public.chat_threads (ticket_id, order_id, order_type, title, metadata, created_by)
    select
        n.id,
        n.appointment_id,
        n.ticket_type,
        coalesce(n.title, pg_catalog.initcap(n.ticket_type) || ' ticket'),
        private.ticket_thread_metadata(n),
        n.created_by
    from new_tickets as n
    where not exists (select from public.chat_threads as th where th.ticket_id = n.id);

    perform private.sync_ticket_thread_members(array(select n.id from new_tickets as n));
    return null;
end
$fn$;

-- A ticket's thread belongs to the ticket: only the system relinks it or changes its order keys;
-- its metadata always carries the ticket's lookup keys, whatever a client writes over it. A
-- legacy thread taken by a ticket (the backfill) keeps the values the ticket's keys replace, as
-- legacy_target_id (a pharmacist's user id where the ticket names the pharmacy) and
-- legacy_prescription_id (a prescription the ticket does not link).
create or replace function private.protect_ticket_thread()
returns trigger
language plpgsql
set search_path = ''
as $fn$
declare
    v_ticket public.healthcare_tickets;
    v_keys jsonb;
begin
    if not private.is_system_actor() and (
        new.ticket_id is distinct from old.ticket_id
        or (old.ticket_id is not null and (
            new.order_id is distinct from old.order_id
            or new.order_type is distinct from old.order_type
            or new.created_by is distinct from old.created_by
        ))
    ) then
        raise exception 'chat thread %: ticket_id, order_id, order_type and created_by of a '
            'ticket''s thread are set by the ticket (CH007)', old.id
            using errcode = 'CH007', hint = 'Change the ticket instead.';
    end if;
    if new.ticket_id is not null then
        select t.* into v_ticket from public.healthcare_tickets as t where t.id = new.ticket_id;
        if found then
            v_keys := private.ticket_thread_metadata(v_ticket);
            if old.ticket_id is null then
                new.metadata := coalesce(new.metadata, '{}')
                || pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                    'legacy_target_id', case
                        when new.metadata ->> 'target_id' is distinct from v_keys ->> 'target_id'
                            then new.metadata ->> 'target_id'
                    end,
                    'legacy_prescription_id', case
                        when new.metadata ->> 'prescription_id'
                            is distinct from v_keys ->> 'prescription_id'
                            then new.metadata ->> 'prescription_id'
                    end
                ));
            end if;
            new.metadata := (coalesce(new.metadata, '{}') - 'target_id' - 'prescription_id')
            || v_keys;
        end if;
    end if;
    return new;
end
$fn$;

revoke execute on function private.create_ticket_threads() from public;

create trigger create_ticket_threads
after insert on public.healthcare_tickets
referencing new table as new_tickets
for each statement execute function private.create_ticket_threads();

-- The kind of actor the caller is on a ticket, for the record: system when no user is signed
-- in; otherwise the role that allowed the change (a status change: the role whose transition
-- it is), else the caller's first role on the ticket. PL/pgSQL, so its query is planned once
-- per session, not at every row a trigger records.
create or replace function private.timeline_actor_kind(
    p_old public.healthcare_tickets, p_new public.healthcare_tickets
)
returns text
language plpgsql stable
security definer
set search_path = ''
as $fn$
declare
    v_kind text;
begin
    if (select auth.uid()) is null then
        return 'system';
    end if;
    select r.role into v_kind
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
    limit 1;
    return coalesce(v_kind, 'system');
end
$fn$;

-- Trigger (healthcare_tickets, after insert, for each statement): one 'created' row per new
-- ticket ('backfilled' under app.source = 'backfill'), written by one statement however many
-- tickets the insert made.
create or replace function private.record_tickets_created()
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
    select
        n.id,
        case when v_source = 'backfill' then 'backfilled' else 'created' end,
        n.status,
        (select auth.uid()),
        private.timeline_actor_kind(n, n),
        v_source,
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'ticket_type', n.ticket_type,
            'secondary_provider_id', n.secondary_provider_id,
            'prescription_id', n.prescription_id,
            'legacy_thread_id', n.legacy_thread_id
        ))
    from new_tickets as n;
    return null;
end
$fn$;

revoke execute on function private.timeline_actor_kind(
    public.healthcare_tickets, public.healthcare_tickets
) from public;

revoke execute on function private.record_tickets_created() from public;

create trigger record_tickets_created
after insert on public.healthcare_tickets
referencing new table as new_tickets
for each statement execute function private.record_tickets_created();

-- The tracking rows of prescription tickets p_ticket_ids that have left 'created' for anything
-- but cancellation (a ticket cancelled before it was ever sent has nothing to track), from
-- their prescriptions (order id, rx number, medications), sent when the ticket was (now, but
-- for a backfilled ticket the legacy prescription's time). Rows already there stay.
create or replace function private.open_prescription_tracking(p_ticket_ids uuid[])
returns void
language plpgsql
set search_path = ''
as $fn$
begin
    insert into public.prescription_tracking (
        ticket_id, prescription_id, pharmacy_id, rx_number, external_order_id,
        medication_name, quantity, current_status, sent_at
    )
    select
        t.id,
        p.id,
        coalesce(t.secondary_provider_id, p.pharmacy_id),
        p.rx_number,
        p.external_order_id,
        i.medication_names,
        i.quantity,
        'sent',
        coalesce(t.sent_at, pg_catalog.now())
    from public.healthcare_tickets as t
    inner join public.prescriptions as p on t.prescription_id = p.id
    left join lateral (
        select
            pg_catalog.string_agg(
                item.medication_name, ', ' order by item.created_at, item.id
            ) as medication_names,
            case when pg_catalog.count(*) = 1 then pg_catalog.max(item.quantity) end as quantity
        from public.prescription_items as item
        where item.prescription_id = p.id
    ) as i on true
    where
        t.id = any(p_ticket_ids)
        and t.ticket_type = 'prescription'
        and t.status not in ('created', 'cancelled')
    on conflict (ticket_id) do nothing;
end
$fn$;

-- The tracking rows of tickets p_ticket_ids reach p_status: the time it was first reached
-- (its <status>_at column), and the current status unless a later one was reached already.
create or replace function private.advance_prescription_tracking(
    p_status text, p_ticket_ids uuid[]
)
returns void
language plpgsql
set search_path = ''
as $fn$
begin
    execute pg_catalog.format(
        'update public.prescription_tracking as t'
        ' set current_status = case when s_new.rank > s_old.rank then $1'
        ' else t.current_status end,'
        ' %1$I = coalesce(t.%1$I, pg_catalog.now())'
        ' from public.ticket_statuses as s_new, public.ticket_statuses as s_old'
        ' where t.ticket_id = any($2)'
        ' and s_new.ticket_type = t.ticket_type and s_new.status = $1'
        ' and s_old.ticket_type = t.ticket_type and s_old.status = t.current_status',
        p_status || '_at'
    ) using p_status, p_ticket_ids;
end
$fn$;

-- After update of status, for each row.
create or replace function private.track_prescription_ticket()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.open_prescription_tracking(array[new.id]);
    if new.status <> 'sent' and private.request_source() <> 'lifefile' then
        perform private.advance_prescription_tracking(new.status, array[new.id]);
    end if;
    return null;
end
$fn$;

-- After insert, for each statement: the tickets inserted past 'created' (a bulk insert pays one
-- statement per status, not one per ticket).
create or replace function private.track_new_prescription_tickets()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_status text;
    v_ids uuid[];
begin
    perform private.open_prescription_tracking(array(select n.id from new_tickets as n));
    if private.request_source() = 'lifefile' then
        return null;
    end if;
    for v_status, v_ids in
        select n.status, pg_catalog.array_agg(n.id)
        from new_tickets as n
        where
            n.ticket_type = 'prescription'
            and n.prescription_id is not null
            and n.status not in ('created', 'sent', 'cancelled')
        group by n.status
    loop
        perform private.advance_prescription_tracking(v_status, v_ids);
    end loop;
    return null;
end
$fn$;

revoke execute on function private.open_prescription_tracking(uuid[]) from public;

revoke execute on function private.advance_prescription_tracking(text, uuid[]) from public;

revoke execute on function private.track_prescription_ticket() from public;

revoke execute on function private.track_new_prescription_tickets() from public;

create trigger track_prescription_ticket
after update of status on public.healthcare_tickets
for each row
when (
    new.ticket_type = 'prescription'
    and new.prescription_id is not null
    and new.status <> 'created'
)
execute function private.track_prescription_ticket();

create trigger track_new_prescription_tickets
after insert on public.healthcare_tickets
referencing new table as new_tickets
for each statement execute function private.track_new_prescription_tickets();

-- The analytics facts of one tracking row, each under the pharmacy-local date it counts under:
-- one volume fact per status reached (sent, received, shipped, delivered, picked_up,
-- cancelled, failed: the date of that event); for a prescription neither cancelled nor failed,
-- its stage times (processing, shipping, delivery: the date received), its total fulfilment
-- (sent → delivered or picked up: the date sent), its shipment lag in local days (the date
-- received) and its on-time outcome (delivered prescriptions and those still on their way
-- that have an estimate: the date received; on_time null = not delivered yet, late once
-- due_at has passed). A pickup has no on-time outcome: nobody promised to deliver it. At most
-- 13 facts (rows 8 tells the planner a handful, not the default 1,000 rows per call).
create or replace function private.fulfillment_fact_rows(
    p_tracking public.prescription_tracking, p_timezone text
)
returns setof private.fulfillment_facts
language sql stable
rows 8
set search_path = ''
as $fn$
    select p_tracking.id, f.kind, p_tracking.pharmacy_id, f.day, f.duration,
        f.shipped_after_days, f.on_time, f.due_at
    from (
        select
            (p_tracking.sent_at at time zone p_timezone)::date as sent_day,
            (p_tracking.received_at at time zone p_timezone)::date as received_day,
            (p_tracking.shipped_at at time zone p_timezone)::date as shipped_day,
            p_tracking.cancelled_at is null and p_tracking.failed_at is null as settled
    ) as d
    cross join lateral (
        values
            ('sent', d.sent_day, null::interval, null::integer, null::boolean, null::timestamptz),
            ('received', d.received_day, null, null, null, null),
            ('shipped', d.shipped_day, null, null, null, null),
            ('delivered', (p_tracking.delivered_at at time zone p_timezone)::date,
                null, null, null, null),
            ('picked_up', (p_tracking.completed_at at time zone p_timezone)::date,
                null, null, null, null),
            ('cancelled', (p_tracking.cancelled_at at time zone p_timezone)::date,
                null, null, null, null),
            ('failed', (p_tracking.failed_at at time zone p_timezone)::date,
                null, null, null, null),
            ('processing', case when d.settled and p_tracking.processing_time is not null
                then d.received_day end, p_tracking.processing_time, null, null, null),
            ('shipping', case when d.settled and p_tracking.shipping_time is not null
                then d.received_day end, p_tracking.shipping_time, null, null, null),
            ('delivery', case when d.settled and p_tracking.delivery_time is not null
                then d.received_day end, p_tracking.delivery_time, null, null, null),
            ('total', case when d.settled and p_tracking.total_time is not null
                then d.sent_day end, p_tracking.total_time, null, null, null),
            ('shipment', case when d.settled and d.shipped_day is not null
                then d.received_day end, null, d.shipped_day - d.received_day, null, null),
            ('on_time', case
                when d.settled and p_tracking.estimated_delivery is not null
                    and p_tracking.completed_at is null
                    then d.received_day
                end, null, null,
                p_tracking.delivered_at <= p_tracking.estimated_delivery,
                p_tracking.estimated_delivery)
    ) as f (kind, day, duration, shipped_after_days, on_time, due_at)
    where p_tracking.pharmacy_id is not null and f.day is not null
$fn$;

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

-- backfill_threads_batch(p_run_id, p_after, p_limit, p_catch_up_since) returns one row
-- One batch of a run: the next p_limit legacy threads after p_after (by id) that have no ticket,
-- planned by private.backfill_thread_plan and applied, all in the caller's transaction (one
-- short transaction per batch; the script sets lock_timeout and statement_timeout). With
-- p_catch_up_since, only threads created since then are taken (threads created while the run
-- went). Returns the last thread id looked at (null: nothing left in this range) and counts.
-- Records the batch and the run's progress, so a stopped run resumes after its last committed
-- batch. Raises 23505 when a live ticket for the same appointment and pharmacy was committed
-- between the plan and the insert: the script retries the batch, which then links to it.
create or replace function private.backfill_threads_batch(
    p_run_id bigint,
    p_after uuid,
    p_limit integer,
    p_catch_up_since timestamptz default null,
    out last_thread_id uuid,
    out threads_seen integer,
    out tickets_created integer,
    out threads_linked integer,
    out threads_skipped integer,
    out warnings integer
)
language plpgsql
set search_path = ''
as $fn$
declare
    v_ids uuid[];
    v_plan private.backfill_decision[];
    v_created_threads uuid[];
    v_event_ids uuid[];
    v_event_tickets uuid[];
    v_before_threads uuid[];
    v_before_profiles uuid[];
    v_source text := pg_catalog.current_setting('app.source', true);
begin
    -- The range: keyset on the primary key, threads of tickets left out (they are done).
    select array_agg(x.id order by x.id) into v_ids
    from (
        select th.id from public.chat_threads as th
        where
            th.id > coalesce(p_after, '00000000-0000-0000-0000-000000000000'::uuid)
            and th.ticket_id is null
            and (p_catch_up_since is null or th.created_at >= p_catch_up_since)
        order by th.id
        limit p_limit
    ) as x;
    last_thread_id := v_ids[pg_catalog.cardinality(v_ids)];
    threads_seen := coalesce(pg_catalog.cardinality(v_ids), 0);
    tickets_created := 0;
    threads_linked := 0;
    threads_skipped := 0;
    warnings := 0;
    if threads_seen = 0 then
        return;
    end if;

    -- Triggers see a backfill: a 'backfilled' timeline row, no notification, no delivery.
    perform pg_catalog.set_config('app.source', 'backfill', true);

    v_plan := array(select p from private.backfill_thread_plan(v_ids) as p);

    -- get_or_create_prescription_ticket's lock for each appointment and pharmacy the batch
    -- writes a ticket for, taken in one order (no deadlock between batches), before any row is
    -- written: a doctor's concurrent call waits for this batch, then finds its ticket.
    perform pg_catalog.pg_advisory_xact_lock(k.key)
    from (
        select distinct pg_catalog.hashtextextended(
            'prescription_ticket:' || p.appointment_id::text || ':'
            || p.secondary_provider_id::text, 0
        ) as key
        from pg_catalog.unnest(v_plan) as p
        where p.action in ('create', 'link') and p.appointment_id is not null
        order by 1
    ) as k;

    v_created_threads := array(
        select p.thread_id from pg_catalog.unnest(v_plan) as p where p.action = 'create'
    );
    select
        coalesce(pg_catalog.array_agg(e.id), '{}'::uuid[]),
        coalesce(pg_catalog.array_agg(p.ticket_id), '{}'::uuid[])
    into v_event_ids, v_event_tickets
    from pg_catalog.unnest(v_plan) as p
    cross join lateral pg_catalog.unnest(p.event_ids) as e (id)
    where p.action = 'create';

    -- The prescription was sent when it was written, not when the backfill ran (set before the
    -- ticket, whose trigger would stamp it with the backfill's clock).
    update public.prescriptions as rx
    set sent_at = p.sent_at
    from pg_catalog.unnest(v_plan) as p
    where p.action = 'create' and p.prescription_id = rx.id and rx.sent_at is null;

    -- The inbox events the tickets' history comes from are this batch's to apply: marked
    -- processed before the tracking rows appear, so no worker is woken for them.
    update private.lifefile_webhook_events as e
    set
        status = 'processed',
        attempts = e.attempts + 1,
        next_attempt_at = null,
        processed_at = pg_catalog.now(),
        last_error = null
    where e.id = any(v_event_ids);

    -- The legacy members, before the tickets' triggers make them follow the parties.
    select array_agg(m.thread_id), array_agg(m.profile_id)
    into v_before_threads, v_before_profiles
    from public.chat_thread_members as m
    where m.thread_id = any(v_created_threads);

    -- Each ticket takes its legacy thread (create_ticket_threads, under app.source =
    -- 'backfill'): the thread keeps order_id, metadata and messages, gets the ticket's keys
    -- (the values they replace are kept beside them) and its members follow the ticket's
    -- parties; authors who are not parties keep their messages.
    insert into public.healthcare_tickets (
        id, ticket_type, status, patient_id, primary_provider_id, secondary_provider_id,
        appointment_id, prescription_id, title, created_by, created_at, updated_at, sent_at,
        closed_at, legacy_thread_id, metadata
    )
    select
        p.ticket_id, 'prescription', p.status, p.patient_id, p.primary_provider_id,
        p.secondary_provider_id, p.appointment_id, p.prescription_id, p.title,
        p.created_by, p.created_at, p.updated_at, p.sent_at, p.closed_at, p.thread_id,
        pg_catalog.jsonb_build_object('backfilled_from_thread', p.thread_id)
    from pg_catalog.unnest(v_plan) as p
    where p.action = 'create';
    get diagnostics tickets_created = row_count;

    -- Legacy members the sync removed, and whether each wrote in the thread (a probe per
    -- removed member: these are few, the tables large).
    with removed as (
        select b.thread_id, b.profile_id
        from rows from (
            pg_catalog.unnest(v_before_threads), pg_catalog.unnest(v_before_profiles)
        ) as b (thread_id, profile_id)
        except
        select m.thread_id, m.profile_id
        from public.chat_thread_members as m
        where m.thread_id = any(v_created_threads)
    )

    insert into private.backfill_thread_outcomes (
        thread_id, outcome, reason, detail, order_id, order_type, ticket_id, run_id
    )
    select
        r.thread_id, 'warning', 'members removed',
        pg_catalog.string_agg(
            r.profile_id::text || case when w.wrote then ' (wrote messages)' else '' end,
            ', ' order by r.profile_id
        ),
        p.order_id, p.order_type, p.ticket_id, p_run_id
    from removed as r
    inner join pg_catalog.unnest(v_plan) as p on r.thread_id = p.thread_id
    left join lateral (
        select true as wrote
        from public.chat_messages as msg
        where msg.thread_id = r.thread_id and msg.sender_id = r.profile_id
        limit 1
    ) as w on true
    group by r.thread_id, p.order_id, p.order_type, p.ticket_id
    on conflict (thread_id, reason) do update
        set detail = excluded.detail, ticket_id = excluded.ticket_id, run_id = excluded.run_id,
        recorded_at = pg_catalog.clock_timestamp();

    -- Tracking keeps the real dates: sent when written (the ticket's sent_at, which the trigger
    -- took), each status when Lifefile said.
    update public.prescription_tracking as t
    set
        received_at = h.received_at,
        processing_at = h.processing_at,
        ready_at = h.ready_at,
        shipped_at = h.shipped_at,
        out_for_delivery_at = h.out_for_delivery_at,
        delivered_at = h.delivered_at,
        completed_at = h.completed_at,
        cancelled_at = h.cancelled_at,
        failed_at = h.failed_at,
        current_status = p.status,
        last_event_at = h.last_event_at,
        tracking_number = coalesce(h.tracking_number, t.tracking_number),
        carrier = coalesce(h.carrier, t.carrier),
        tracking_url = coalesce(
            h.tracking_url, t.tracking_url,
            private.carrier_tracking_url(coalesce(h.carrier, t.carrier), h.tracking_number)
        ),
        estimated_delivery = coalesce(h.estimated_delivery, t.estimated_delivery)
    from pg_catalog.unnest(v_plan) as p
    inner join (
        select
            et.ticket_id,
            min(x.occurred_at) filter (where x.status = 'received') as received_at,
            min(x.occurred_at) filter (where x.status = 'processing') as processing_at,
            min(x.occurred_at) filter (where x.status = 'ready') as ready_at,
            min(x.occurred_at) filter (where x.status = 'shipped') as shipped_at,
            min(x.occurred_at) filter (where x.status = 'out_for_delivery')
                as out_for_delivery_at,
            min(x.occurred_at) filter (where x.status = 'delivered') as delivered_at,
            min(x.occurred_at) filter (where x.status = 'completed') as completed_at,
            min(x.occurred_at) filter (where x.status = 'cancelled') as cancelled_at,
            min(x.occurred_at) filter (where x.status = 'failed') as failed_at,
            max(x.occurred_at) as last_event_at,
            (array_agg(x.tracking_number order by x.occurred_at desc)
                filter (where x.tracking_number is not null))[1] as tracking_number,
            (array_agg(x.carrier order by x.occurred_at desc)
                filter (where x.carrier is not null))[1] as carrier,
            (array_agg(x.tracking_url order by x.occurred_at desc)
                filter (where x.tracking_url is not null))[1] as tracking_url,
            (array_agg(x.estimated_delivery order by x.occurred_at desc)
                filter (where x.estimated_delivery is not null))[1] as estimated_delivery
        -- The whole batch's history read at once, each event to its ticket.
        from private.backfill_lifefile_history(v_event_ids) as x
        inner join rows from (
            pg_catalog.unnest(v_event_ids), pg_catalog.unnest(v_event_tickets)
        ) as et (event_id, ticket_id) on x.event_id = et.event_id
        group by et.ticket_id
    ) as h on p.ticket_id = h.ticket_id
    where p.action = 'create' and t.ticket_id = h.ticket_id;

    -- The history itself, one row per event, as processing would have written it.
    insert into public.prescription_status_events (
        ticket_id, tracking_id, webhook_event_id, status, previous_status, external_status,
        external_previous_status, occurred_at, received_at, source, applied, note, details
    )
    select
        et.ticket_id, t.id, x.event_id, x.status,
        pg_catalog.lag(x.status, 1, 'sent') over (
            partition by et.ticket_id order by x.occurred_at, x.seq
        ),
        x.external_status, x.previous_status, x.occurred_at, x.received_at, 'backfill', true,
        'applied by the backfill when the legacy thread got its ticket',
        pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
            'tracking_number', x.tracking_number,
            'carrier', x.carrier,
            'tracking_url', x.tracking_url,
            'estimated_delivery', x.estimated_delivery,
            'order_id', x.order_id,
            'rx_number', x.rx_number
        ))
    from private.backfill_lifefile_history(v_event_ids) as x
    inner join rows from (
        pg_catalog.unnest(v_event_ids), pg_catalog.unnest(v_event_tickets)
    ) as et (event_id, ticket_id) on x.event_id = et.event_id
    inner join public.prescription_tracking as t on et.ticket_id = t.ticket_id;

    update private.lifefile_webhook_events as e
    set ticket_id = x.ticket_id
    from rows from (
        pg_catalog.unnest(v_event_ids), pg_catalog.unnest(v_event_tickets)
    ) as x (id, ticket_id)
    where e.id = x.id;

    -- A live ticket of the same appointment and pharmacy keeps its own thread and records the
    -- legacy one; its parties read it through the thread and message policies.
    update public.healthcare_tickets as t
    set legacy_thread_id = p.thread_id
    from pg_catalog.unnest(v_plan) as p
    where p.action = 'link' and t.id = p.ticket_id and t.legacy_thread_id is null;
    get diagnostics threads_linked = row_count;

    -- The report: a thread's earlier outcomes give way to this batch's.
    delete from private.backfill_thread_outcomes as o
    using pg_catalog.unnest(v_plan) as p
    where o.thread_id = p.thread_id and o.reason <> 'members removed';

    insert into private.backfill_thread_outcomes (
        thread_id, outcome, reason, detail, order_id, order_type, ticket_id, run_id
    )
    select p.thread_id, 'skipped', p.reason, p.detail, p.order_id, p.order_type, null, p_run_id
    from pg_catalog.unnest(v_plan) as p
    where p.action = 'skip'
    union all
    select
        p.thread_id, 'warning', w.value ->> 'reason', w.value ->> 'detail', p.order_id,
        p.order_type, p.ticket_id, p_run_id
    from pg_catalog.unnest(v_plan) as p
    cross join lateral pg_catalog.jsonb_array_elements(p.warnings) as w
    where p.action <> 'skip';

    select
        (count(*) filter (where p.action = 'skip'))::integer,
        coalesce(
            sum(pg_catalog.jsonb_array_length(p.warnings)) filter (where p.action <> 'skip'), 0
        )::integer
    into threads_skipped, warnings
    from pg_catalog.unnest(v_plan) as p;

    insert into private.backfill_batches (
        run_id, phase, from_thread_id, to_thread_id, threads_seen, tickets_created,
        threads_linked, threads_skipped, warnings
    )
    values (
        p_run_id, case when p_catch_up_since is null then 'scan' else 'catch_up' end,
        v_ids[1], last_thread_id, threads_seen, tickets_created, threads_linked,
        threads_skipped, warnings
    );
    update private.backfill_runs as r
    set
        last_thread_id = backfill_threads_batch.last_thread_id,
        threads_seen = r.threads_seen + backfill_threads_batch.threads_seen,
        tickets_created = r.tickets_created + backfill_threads_batch.tickets_created,
        threads_linked = r.threads_linked + backfill_threads_batch.threads_linked,
        threads_skipped = r.threads_skipped + backfill_threads_batch.threads_skipped,
        warnings = r.warnings + backfill_threads_batch.warnings,
        batches = r.batches + 1
    where r.id = p_run_id;

    perform pg_catalog.set_config('app.source', coalesce(v_source, ''), true);
end
$fn$;
