-- Ticket threads: every ticket has one chat thread (created by trigger, legacy-compatible
-- order_id/metadata), whose members are kept equal to the ticket's parties; messages pass a gate
-- (a prescription ticket's thread stays closed until the prescription is attached) and are
-- posted as the caller.

-- The legacy lookup keys a thread carries: metadata.target_id (the fulfiller) and
-- metadata.prescription_id, so `order_id + metadata->>target_id` still finds ticket threads.
create or replace function private.ticket_thread_metadata(p_ticket public.healthcare_tickets)
returns jsonb
language sql immutable
set search_path = ''
as $fn$
    select pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
        'ticket_id', p_ticket.id,
        'target_id', p_ticket.secondary_provider_id,
        'prescription_id', p_ticket.prescription_id
    ))
$fn$;

-- Makes the members of the threads of tickets p_ticket_ids equal to their parties: the
-- patient, every member of the primary provider, and every member of the secondary provider
-- once the ticket was sent (private.fulfiller_is_party). Set-based, so a staff change at a
-- large provider is one statement.
create or replace function private.sync_ticket_thread_members(p_ticket_ids uuid[])
returns void
language sql
security definer
set search_path = ''
as $fn$
    with desired as (
        select distinct on (th.id, party.profile_id)
            th.id as thread_id,
            party.profile_id,
            party.role
        from public.healthcare_tickets as t
        inner join public.chat_threads as th on t.id = th.ticket_id
        cross join lateral (
            select t.patient_id as profile_id, 'patient' as role, 1 as priority
            where t.patient_id is not null
            union all
            select m.profile_id, 'primary', 2
            from public.provider_members as m
            where m.provider_id = t.primary_provider_id
            union all
            select m.profile_id, 'secondary', 3
            from public.provider_members as m
            where
                m.provider_id = t.secondary_provider_id
                and private.fulfiller_is_party(t.sent_at)
        ) as party
        where t.id = any(p_ticket_ids)
        order by th.id, party.profile_id, party.priority
    ),

    removed as (
        delete from public.chat_thread_members as cm
        using public.chat_threads as th
        where
            cm.thread_id = th.id
            and th.ticket_id = any(p_ticket_ids)
            and not exists (
                select from desired as d
                where d.thread_id = cm.thread_id and d.profile_id = cm.profile_id
            )
    )

    insert into public.chat_thread_members (thread_id, profile_id, role)
    select d.thread_id, d.profile_id, d.role from desired as d
    on conflict (thread_id, profile_id) do update
        set role = excluded.role
        where chat_thread_members.role is distinct from excluded.role
$fn$;

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

create or replace function private.sync_ticket_thread()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if new.appointment_id is distinct from old.appointment_id
        or new.secondary_provider_id is distinct from old.secondary_provider_id
        or new.prescription_id is distinct from old.prescription_id
        or new.title is distinct from old.title then
        update public.chat_threads as th
        set
            order_id = new.appointment_id,
            title = coalesce(new.title, th.title),
            metadata = (th.metadata - 'target_id' - 'prescription_id')
            || private.ticket_thread_metadata(new)
        where th.ticket_id = new.id;
    end if;
    if new.patient_id is distinct from old.patient_id
        or new.primary_provider_id is distinct from old.primary_provider_id
        or new.secondary_provider_id is distinct from old.secondary_provider_id
        or private.fulfiller_is_party(new.sent_at)
        <> private.fulfiller_is_party(old.sent_at) then
        perform private.sync_ticket_thread_members(array[new.id]);
    end if;
    return null;
end
$fn$;

-- Provider staff come and go: the threads of the provider's tickets follow.
create or replace function private.sync_provider_ticket_threads()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_provider_ids uuid[] := array_remove(array[
        case when tg_op <> 'INSERT' then old.provider_id end,
        case when tg_op <> 'DELETE' then new.provider_id end
    ], null);
begin
    perform private.sync_ticket_thread_members(array(
        select t.id from public.healthcare_tickets as t
        where t.primary_provider_id = any(v_provider_ids)
        union
        select t.id from public.healthcare_tickets as t
        where t.secondary_provider_id = any(v_provider_ids)
    ));
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

-- Before a message is stored: it is posted as the caller (no impersonation, CH008), and a
-- prescription ticket's thread takes no message until the prescription is attached (CH004).
-- Authorisation first: for a caller who is not a member of the thread this says nothing about
-- the thread or its ticket; the insert policy refuses the row (42501).
create or replace function private.check_chat_message()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket public.healthcare_tickets;
begin
    if private.is_api_request() then
        if not exists (
            select from public.chat_thread_members as m
            where m.thread_id = new.thread_id and m.profile_id = (select auth.uid())
        ) then
            return new;
        end if;
        new.sender_id := coalesce(new.sender_id, (select auth.uid()));
        if new.sender_id is distinct from (select auth.uid()) then
            raise exception 'messages are posted as yourself; sender_id % is not you (CH008)',
                new.sender_id
                using errcode = 'CH008', hint = 'Leave sender_id out; it is set for you.';
        end if;
        if new.kind = 'system' then
            raise exception 'system messages are written by the system only (CH008)'
                using errcode = 'CH008', hint = 'Post kind ''text'', ''image'' or ''file''.';
        end if;
    end if;
    select t.* into v_ticket
    from public.chat_threads as th
    inner join public.healthcare_tickets as t on th.ticket_id = t.id
    where th.id = new.thread_id;
    if found and v_ticket.ticket_type = 'prescription' and v_ticket.prescription_id is null then
        raise exception 'ticket % is ''%''; attach a prescription before posting messages (CH004)',
            v_ticket.id, v_ticket.status
            using errcode = 'CH004',
            hint = 'Save the prescription and link it to the ticket (prescription_id) first.';
    end if;
    return new;
end
$fn$;

-- A ticket's thread, and with it its messages, is kept as long as its ticket: no API role
-- (service_role included) deletes it; only the ticket's own deletion (a documented erasure, by
-- the database owner) cascades to it. Legacy threads (no ticket) may still be deleted by the
-- service while they are being migrated.
create or replace function private.keep_ticket_thread()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    if old.ticket_id is not null
        and current_user in ('anon', 'authenticated', 'service_role') then
        raise exception 'chat thread % belongs to a ticket and is kept with it (42501)', old.id
            using errcode = '42501',
            hint = 'Threads of tickets are never deleted through the API.';
    end if;
    return old;
end
$fn$;

-- A new message moves its thread up the inbox.
create or replace function private.touch_chat_thread()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    update public.chat_threads set updated_at = pg_catalog.now() where id = new.thread_id;
    return null;
end
$fn$;

revoke execute on function private.ticket_thread_metadata(public.healthcare_tickets) from public;
revoke execute on function private.sync_ticket_thread_members(uuid[]) from public;
revoke execute on function private.create_ticket_threads() from public;
revoke execute on function private.sync_ticket_thread() from public;
revoke execute on function private.sync_provider_ticket_threads() from public;
revoke execute on function private.protect_ticket_thread() from public;
revoke execute on function private.check_chat_message() from public;
revoke execute on function private.touch_chat_thread() from public;
revoke execute on function private.keep_ticket_thread() from public;
grant execute on function private.ticket_thread_metadata(
    public.healthcare_tickets
) to authenticated, service_role;

drop trigger if exists create_ticket_threads on public.healthcare_tickets;
create trigger create_ticket_threads
after insert on public.healthcare_tickets
referencing new table as new_tickets
for each statement execute function private.create_ticket_threads();

drop trigger if exists sync_ticket_thread on public.healthcare_tickets;
create trigger sync_ticket_thread
after update on public.healthcare_tickets
for each row execute function private.sync_ticket_thread();

drop trigger if exists sync_provider_ticket_threads on public.provider_members;
create trigger sync_provider_ticket_threads
after insert or update or delete on public.provider_members
for each row execute function private.sync_provider_ticket_threads();

drop trigger if exists protect_ticket_thread on public.chat_threads;
create trigger protect_ticket_thread
before update on public.chat_threads
for each row execute function private.protect_ticket_thread();

drop trigger if exists keep_ticket_thread on public.chat_threads;
create trigger keep_ticket_thread
before delete on public.chat_threads
for each row execute function private.keep_ticket_thread();

drop trigger if exists set_updated_at on public.chat_threads;
create trigger set_updated_at
before update on public.chat_threads
for each row execute function private.set_updated_at();

drop trigger if exists check_chat_message on public.chat_messages;
create trigger check_chat_message
before insert on public.chat_messages
for each row execute function private.check_chat_message();

drop trigger if exists touch_chat_thread on public.chat_messages;
create trigger touch_chat_thread
after insert on public.chat_messages
for each row execute function private.touch_chat_thread();
