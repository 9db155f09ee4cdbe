-- Ticket timeline: one row per change of a ticket, written by triggers only, append-only for
-- everyone (the service included). source comes from app.source (see private.request_source).

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

-- One row per kind of change an update makes: the status (or claim), the fulfiller, the
-- prescription; other columns changed are listed in the status row's details, or, without a
-- status change, in one 'updated' row, with their old and new values (details.changes:
-- {"<column>": {"old": ..., "new": ...}}), so no edit loses what was there.
create or replace function private.record_ticket_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_source text := private.request_source();
    v_actor uuid := (select auth.uid());
    v_kind text := private.timeline_actor_kind(old, new);
    v_claimed_status text;
    v_other text[];
    v_changes jsonb;
begin
    select tt.claimed_status into v_claimed_status
    from public.ticket_types as tt where tt.ticket_type = new.ticket_type;

    select
        array_agg(n.key order by n.key),
        pg_catalog.jsonb_object_agg(
            n.key, pg_catalog.jsonb_build_object('old', o.value, 'new', n.value)
        )
    into v_other, v_changes
    from pg_catalog.jsonb_each(pg_catalog.to_jsonb(new)) as n
    inner join pg_catalog.jsonb_each(pg_catalog.to_jsonb(old)) as o on n.key = o.key
    where
        n.value is distinct from o.value
        and n.key not in (
            'updated_at', 'status', 'secondary_provider_id', 'prescription_id', 'claimed_at',
            'closed_at'
        );
    if new.status is distinct from old.status then
        insert into public.ticket_timeline (
            ticket_id, event_type, from_status, to_status, actor_id, actor_kind, source, details
        )
        values (
            new.id,
            case
                when old.secondary_provider_id is null and new.secondary_provider_id is not null
                    and new.status = v_claimed_status then 'claimed'
                else 'status_changed'
            end,
            old.status, new.status, v_actor, v_kind, v_source,
            pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
                'secondary_provider_id',
                case when new.secondary_provider_id is distinct from old.secondary_provider_id
                    then new.secondary_provider_id end,
                'columns', pg_catalog.to_jsonb(v_other)
            ))
            -- Not stripped: a null old or new value is part of the record.
            || case
                when v_changes is null then '{}'::jsonb
                else pg_catalog.jsonb_build_object('changes', v_changes)
            end
        );
    elsif new.secondary_provider_id is distinct from old.secondary_provider_id then
        insert into public.ticket_timeline (
            ticket_id, event_type, from_status, to_status, actor_id, actor_kind, source, details
        )
        values (
            new.id, 'assigned', old.status, new.status, v_actor, v_kind, v_source,
            pg_catalog.jsonb_build_object(
                'from_provider_id', old.secondary_provider_id,
                'to_provider_id', new.secondary_provider_id
            )
        );
    end if;

    if new.status is distinct from old.status
        and new.secondary_provider_id is distinct from old.secondary_provider_id
        and not (old.secondary_provider_id is null and new.status = v_claimed_status) then
        insert into public.ticket_timeline (
            ticket_id, event_type, from_status, to_status, actor_id, actor_kind, source, details
        )
        values (
            new.id, 'assigned', new.status, new.status, v_actor, v_kind, v_source,
            pg_catalog.jsonb_build_object(
                'from_provider_id', old.secondary_provider_id,
                'to_provider_id', new.secondary_provider_id
            )
        );
    end if;

    if new.prescription_id is distinct from old.prescription_id then
        insert into public.ticket_timeline (
            ticket_id, event_type, from_status, to_status, actor_id, actor_kind, source, details
        )
        values (
            new.id, 'prescription_linked', old.status, new.status, v_actor, v_kind, v_source,
            pg_catalog.jsonb_build_object('prescription_id', new.prescription_id)
            || case
                when old.prescription_id is null then '{}'::jsonb
                else pg_catalog.jsonb_build_object('from_prescription_id', old.prescription_id)
            end
        );
    end if;

    if v_other is not null and new.status is not distinct from old.status then
        insert into public.ticket_timeline (
            ticket_id, event_type, from_status, to_status, actor_id, actor_kind, source, details
        )
        values (
            new.id, 'updated', old.status, new.status, v_actor, v_kind, v_source,
            pg_catalog.jsonb_build_object(
                'columns', pg_catalog.to_jsonb(v_other), 'changes', v_changes
            )
        );
    end if;
    return null;
end
$fn$;

-- The timeline is history: no one rewrites or removes it. Rows go only with their ticket (the
-- cascade of a ticket's deletion runs this trigger one level down).
create or replace function private.forbid_timeline_changes()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    if tg_op = 'DELETE' and pg_catalog.pg_trigger_depth() > 1 then
        return old;
    end if;
    raise exception 'ticket_timeline is append-only: rows cannot be %d', pg_catalog.lower(tg_op)
        using errcode = '42501',
        hint = 'The timeline records what happened; make a new change to the ticket instead.';
end
$fn$;

revoke execute on function private.timeline_actor_kind(
    public.healthcare_tickets, public.healthcare_tickets
) from public;
revoke execute on function private.record_tickets_created() from public;
revoke execute on function private.record_ticket_changed() from public;
revoke execute on function private.forbid_timeline_changes() from public;

drop trigger if exists record_tickets_created on public.healthcare_tickets;
create trigger record_tickets_created
after insert on public.healthcare_tickets
referencing new table as new_tickets
for each statement execute function private.record_tickets_created();

drop trigger if exists record_ticket_changed on public.healthcare_tickets;
create trigger record_ticket_changed
after update on public.healthcare_tickets
for each row execute function private.record_ticket_changed();

drop trigger if exists forbid_timeline_changes on public.ticket_timeline;
create trigger forbid_timeline_changes
before update or delete on public.ticket_timeline
for each row execute function private.forbid_timeline_changes();

drop trigger if exists forbid_timeline_truncate on public.ticket_timeline;
create trigger forbid_timeline_truncate
before truncate on public.ticket_timeline
for each statement execute function private.forbid_timeline_changes();
