-- Ticket operations analytics (issue 12): ticket_operations_report. The definitions below are
-- supabase/functions-sql/operations_report.sql as of this migration.

-- Ticket operations analytics for admins and providers (seed 004): flow, response times,
-- backlog and workload per ticket type and fulfilling provider. Definitions: README,
-- "Fulfilment and operations analytics".

-- The status at which a ticket of type p_ticket_type counts as accepted: its type's first
-- fulfiller status.
create or replace function private.ticket_accepted_status(p_ticket_type text)
returns text
language sql immutable
set search_path = ''
as $fn$
    select case p_ticket_type
        when 'prescription' then 'received'
        when 'diagnostic' then 'scheduled'
        when 'counseling' then 'claimed'
        else 'accepted'
    end
$fn$;

-- public.ticket_operations_report: per ticket type, fulfilling provider (the ticket's current
-- secondary provider; null while nobody has taken it) and UTC period of grain p_grain that
-- overlaps p_from .. p_to (inclusive):
--   opened_count     tickets sent to the fulfiller (sent_at) in the period;
--   accepted_count   tickets that first reached their accepted status in the period;
--   declined_count   tickets first declined in the period;
--   completed_count  tickets first completed (a prescription: delivered or picked up) in it;
--   time_to_accept_p50/p90  sent → accepted, of the tickets accepted in the period;
--   first_response_p50      sent → the fulfiller's first chat message (a member of the
--                           provider), of the first messages written in the period;
--   open_backlog_1d/_7d/_older  tickets sent and neither accepted nor closed at the period's
--                           end (or now, for the current period), by age at that moment:
--                           ≤ 1 day, ≤ 7 days, older;
--   active_tickets   tickets claimed or scheduled at that moment (a counsellor's workload).
-- Rows only where something is non-zero. Admins (and system sessions) see every row; anyone
-- else the rows of providers they act for. Security invoker: the tickets, timeline and
-- messages read are those RLS shows the caller. Raises 22023 for a bad grain or range.
create or replace function public.ticket_operations_report(
    p_from date, p_to date, p_grain text default 'week'
)
returns table (
    ticket_type text,
    provider_id uuid,
    period_start date,
    opened_count integer,
    accepted_count integer,
    declined_count integer,
    completed_count integer,
    time_to_accept_p50 interval,
    time_to_accept_p90 interval,
    first_response_p50 interval,
    open_backlog_1d integer,
    open_backlog_7d integer,
    open_backlog_older integer,
    active_tickets integer
)
language plpgsql stable
set search_path = ''
as $fn$
declare
    v_everything boolean;
    v_start date;
begin
    if p_grain is null or p_grain not in ('day', 'week', 'month') then
        raise exception 'grain must be day, week or month, not %', coalesce(p_grain, 'null')
        using errcode = '22023';
    end if;
    if p_from is null or p_to is null or p_from > p_to then
        raise exception 'give a period with from <= to (got % .. %)', p_from, p_to
        using errcode = '22023';
    end if;
    if p_to - p_from > 1830 then
        raise exception 'the period is longer than five years; ask for less'
        using errcode = '22023';
    end if;
    v_everything := auth.role() is distinct from 'authenticated'
        or coalesce((select private.is_admin()), false);
    v_start := private.fulfillment_period_start(p_grain, p_from);
    return query
    with periods as (
        select
            s.day::date as period_start,
            least(
                private.fulfillment_period_end(p_grain, s.day::date)::timestamp
                at time zone 'UTC',
                pg_catalog.now()
            ) as as_of
        from pg_catalog.generate_series(
            v_start::timestamp, p_to::timestamp,
            case p_grain when 'day' then '1 day' when 'week' then '7 days' else '1 month' end
            ::interval
        ) as s (day)
        -- A period that has not begun has no backlog yet.
        where s.day <= pg_catalog.now()
    ),
    tickets as (
        select
            t.id, t.ticket_type, t.secondary_provider_id, t.sent_at, t.closed_at,
            (
                select pg_catalog.min(tl.created_at) from public.ticket_timeline as tl
                where tl.ticket_id = t.id
                    and tl.to_status = private.ticket_accepted_status(t.ticket_type)
            ) as accepted_at,
            (
                select pg_catalog.min(tl.created_at) from public.ticket_timeline as tl
                where tl.ticket_id = t.id and tl.to_status = 'declined'
            ) as declined_at,
            (
                select pg_catalog.min(tl.created_at) from public.ticket_timeline as tl
                where tl.ticket_id = t.id
                    and (
                        tl.to_status = 'completed'
                        or (t.ticket_type = 'prescription' and tl.to_status = 'delivered')
                    )
            ) as completed_at,
            (
                select pg_catalog.min(m.created_at)
                from public.chat_threads as th
                join public.chat_messages as m on m.thread_id = th.id
                join public.provider_members as pm
                    on pm.profile_id = m.sender_id and pm.provider_id = t.secondary_provider_id
                where th.ticket_id = t.id
            ) as first_response_at
        from public.healthcare_tickets as t
        where t.sent_at is not null
            and (
                v_everything
                or t.secondary_provider_id = any(array(select private.current_provider_ids()))
            )
    ),
    events as (
        select tk.ticket_type, tk.secondary_provider_id, 'opened' as kind, tk.sent_at as at,
            null::interval as took
        from tickets as tk
        union all
        select tk.ticket_type, tk.secondary_provider_id, 'accepted', tk.accepted_at,
            tk.accepted_at - tk.sent_at
        from tickets as tk where tk.accepted_at is not null
        union all
        select tk.ticket_type, tk.secondary_provider_id, 'declined', tk.declined_at, null
        from tickets as tk where tk.declined_at is not null
        union all
        select tk.ticket_type, tk.secondary_provider_id, 'completed', tk.completed_at, null
        from tickets as tk where tk.completed_at is not null
        union all
        select tk.ticket_type, tk.secondary_provider_id, 'first_response',
            tk.first_response_at, tk.first_response_at - tk.sent_at
        from tickets as tk where tk.first_response_at is not null
    ),
    flows as (
        select
            e.ticket_type, e.secondary_provider_id,
            private.fulfillment_period_start(p_grain, (e.at at time zone 'UTC')::date) as period,
            (pg_catalog.count(*) filter (where e.kind = 'opened'))::integer as opened,
            (pg_catalog.count(*) filter (where e.kind = 'accepted'))::integer as accepted,
            (pg_catalog.count(*) filter (where e.kind = 'declined'))::integer as declined,
            (pg_catalog.count(*) filter (where e.kind = 'completed'))::integer as completed,
            pg_catalog.percentile_cont(array[0.5, 0.9]::double precision[])
                within group (order by e.took) filter (where e.kind = 'accepted') as accept_pct,
            pg_catalog.percentile_cont(0.5::double precision)
                within group (order by e.took) filter (where e.kind = 'first_response')
                as response_p50
        from events as e
        where e.at >= v_start::timestamp at time zone 'UTC'
            and e.at < (p_to + 1)::timestamp at time zone 'UTC'
        group by 1, 2, 3
    ),
    states as (
        select
            tk.ticket_type, tk.secondary_provider_id, p.period_start as period,
            (pg_catalog.count(*) filter (
                where w.waiting and p.as_of - tk.sent_at <= '1 day'::interval
            ))::integer as backlog_1d,
            (pg_catalog.count(*) filter (
                where w.waiting and p.as_of - tk.sent_at > '1 day'::interval
                    and p.as_of - tk.sent_at <= '7 days'::interval
            ))::integer as backlog_7d,
            (pg_catalog.count(*) filter (
                where w.waiting and p.as_of - tk.sent_at > '7 days'::interval
            ))::integer as backlog_older,
            (pg_catalog.count(*) filter (
                where w.status_then in ('claimed', 'scheduled')
            ))::integer as active
        from periods as p
        join tickets as tk on tk.sent_at < p.as_of
        cross join lateral (
            select
                (tk.accepted_at is null or tk.accepted_at >= p.as_of)
                and (tk.closed_at is null or tk.closed_at >= p.as_of) as waiting,
                (
                    select tl.to_status from public.ticket_timeline as tl
                    where tl.ticket_id = tk.id and tl.created_at < p.as_of
                        and tl.to_status is not null
                    order by tl.created_at desc
                    limit 1
                ) as status_then
        ) as w
        group by 1, 2, 3
    ),
    combined as (
        select f.ticket_type, f.secondary_provider_id, f.period, f.opened, f.accepted,
            f.declined, f.completed, f.accept_pct, f.response_p50,
            null::integer as backlog_1d, null::integer as backlog_7d,
            null::integer as backlog_older, null::integer as active
        from flows as f
        union all
        select s.ticket_type, s.secondary_provider_id, s.period, null, null, null, null, null,
            null, s.backlog_1d, s.backlog_7d, s.backlog_older, s.active
        from states as s
        where s.backlog_1d + s.backlog_7d + s.backlog_older + s.active > 0
    )
    select
        c.ticket_type, c.secondary_provider_id, c.period,
        coalesce(pg_catalog.max(c.opened), 0), coalesce(pg_catalog.max(c.accepted), 0),
        coalesce(pg_catalog.max(c.declined), 0), coalesce(pg_catalog.max(c.completed), 0),
        (pg_catalog.max(c.accept_pct))[1],
        (pg_catalog.max(c.accept_pct))[2],
        pg_catalog.max(c.response_p50),
        coalesce(pg_catalog.max(c.backlog_1d), 0), coalesce(pg_catalog.max(c.backlog_7d), 0),
        coalesce(pg_catalog.max(c.backlog_older), 0), coalesce(pg_catalog.max(c.active), 0)
    from combined as c
    where c.period <= p_to
    group by c.ticket_type, c.secondary_provider_id, c.period
    order by c.ticket_type, c.secondary_provider_id nulls first, c.period;
end
$fn$;

revoke execute on function private.ticket_accepted_status(text) from public;
revoke execute on function public.ticket_operations_report(date, date, text) from public;
grant execute on function private.ticket_accepted_status(text) to authenticated, service_role;
grant execute on function public.ticket_operations_report(date, date, text)
to authenticated, service_role;
