-- In-app notifications: rows in public.notifications written by triggers at each trigger point
-- of the ticket workflow. Nobody is notified of their own action, and a backfill
-- (app.source = 'backfill') notifies no one about history.

-- Stores one notification for each distinct recipient, leaving out the caller.
create or replace function private.notify(
    p_recipients uuid[],
    p_ticket_id uuid,
    p_type text,
    p_title text,
    p_body text,
    p_data jsonb default '{}'
)
returns void
language sql
security definer
set search_path = ''
as $fn$
    insert into public.notifications (recipient_id, ticket_id, type, title, body, data)
    select distinct r.recipient_id, p_ticket_id, p_type, p_title, p_body, p_data
    from pg_catalog.unnest(p_recipients) as r (recipient_id)
    where
        r.recipient_id is not null
        and r.recipient_id is distinct from (select auth.uid())
        and private.request_source() <> 'backfill'
$fn$;

create or replace function private.provider_member_ids(p_provider_id uuid)
returns uuid[]
language sql stable
security definer
set search_path = ''
as $fn$
    select coalesce(array_agg(m.profile_id), '{}')
    from public.provider_members as m
    where m.provider_id = p_provider_id
$fn$;

-- Everyone who may claim an open ticket needing p_required_kind in p_category.
create or replace function private.claim_pool_member_ids(p_required_kind text, p_category text)
returns uuid[]
language sql stable
security definer
set search_path = ''
as $fn$
    select coalesce(array_agg(distinct m.profile_id), '{}')
    from public.provider_members as m
    where private.provider_can_claim(m.provider_id, p_required_kind, p_category)
$fn$;

-- A crisis reaches every counsellor (members of active counsellor providers, and users whose
-- role is counselor) and every admin.
create or replace function private.crisis_responder_ids()
returns uuid[]
language sql stable
security definer
set search_path = ''
as $fn$
    select coalesce(array_agg(distinct x.id), '{}')
    from (
        select m.profile_id as id
        from public.provider_members as m
        inner join public.providers as p on m.provider_id = p.id
        where p.kind = 'counselor' and p.is_active
        union
        select pr.id from public.profile as pr where pr.role in ('counselor', 'admin')
    ) as x
$fn$;

create or replace function private.ticket_label(p_ticket public.healthcare_tickets)
returns text
language sql immutable
set search_path = ''
as $fn$
    select coalesce(p_ticket.title, pg_catalog.initcap(p_ticket.ticket_type) || ' ticket')
$fn$;

create or replace function private.notify_ticket_created()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_data jsonb := pg_catalog.jsonb_build_object(
        'ticket_id', new.id, 'ticket_type', new.ticket_type, 'status', new.status
    );
begin
    if new.ticket_type = 'consultation' and new.status = 'requested' then
        perform private.notify(
            case
                when new.secondary_provider_id is not null
                    then private.provider_member_ids(new.secondary_provider_id)
                else private.claim_pool_member_ids(new.required_provider_kind, new.category)
            end,
            new.id, 'consultation_requested', 'New consultation request',
            private.ticket_label(new), v_data
        );
    end if;
    if new.ticket_type = 'counseling' and new.urgency = 'crisis' then
        perform private.notify(
            private.crisis_responder_ids(), new.id, 'counseling_crisis',
            'Crisis: counselling needed now', private.ticket_label(new), v_data
        );
    end if;
    return null;
end
$fn$;

-- A status change reaches the patient and the other party (not the acting side's colleagues;
-- a system change, such as a pharmacy feed, counts as the fulfiller's side). A ticket that
-- becomes open reaches the providers that may claim it.
create or replace function private.notify_ticket_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_side text := private.timeline_actor_kind(old, new);
    v_type public.ticket_types;
    v_data jsonb := pg_catalog.jsonb_build_object(
        'ticket_id', new.id, 'ticket_type', new.ticket_type, 'status', new.status,
        'from_status', old.status
    );
begin
    select * into v_type from public.ticket_types where ticket_type = new.ticket_type;
    if new.status is distinct from old.status then
        perform private.notify(
            array[new.patient_id]
            || case
                when v_side = 'primary' then '{}'
                else private.provider_member_ids(new.primary_provider_id)
            end
            || case
                when v_side in ('secondary', 'system')
                    or not private.fulfiller_is_party(new.sent_at)
                    then '{}'
                else private.provider_member_ids(new.secondary_provider_id)
            end,
            new.id,
            new.ticket_type || '_' || new.status,
            pg_catalog.initcap(new.ticket_type) || ' ' || pg_catalog.replace(new.status, '_', ' '),
            pg_catalog.format(
                '%s is now %s', private.ticket_label(new), pg_catalog.replace(new.status, '_', ' ')
            ),
            v_data
        );
        if new.secondary_provider_id is null and new.status = v_type.claimable_status then
            perform private.notify(
                private.claim_pool_member_ids(new.required_provider_kind, new.category),
                new.id, new.ticket_type || '_open', 'New ' || new.ticket_type || ' to claim',
                private.ticket_label(new), v_data
            );
        end if;
    elsif new.ticket_type = 'consultation' and new.status = 'requested'
        and new.secondary_provider_id is distinct from old.secondary_provider_id
        and new.secondary_provider_id is not null then
        perform private.notify(
            private.provider_member_ids(new.secondary_provider_id), new.id,
            'consultation_requested', 'New consultation request', private.ticket_label(new),
            v_data
        );
    end if;
    return null;
end
$fn$;

-- A new message reaches the thread's other members.
create or replace function private.notify_chat_message()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket_id uuid;
begin
    select th.ticket_id into v_ticket_id from public.chat_threads as th where th.id = new.thread_id;
    perform private.notify(
        array(
            select m.profile_id from public.chat_thread_members as m
            where m.thread_id = new.thread_id and m.profile_id is distinct from new.sender_id
        ),
        v_ticket_id, 'chat_message', 'New message', pg_catalog.left(new.body, 140),
        pg_catalog.jsonb_build_object('thread_id', new.thread_id, 'message_id', new.id)
    );
    return null;
end
$fn$;

-- A member who leaves a provider (removed, or moved elsewhere) loses the notifications of the
-- tickets they knew through it, message excerpts included, unless they are still a party to the
-- ticket another way (its patient, a member of its other provider, an admin).
create or replace function private.forget_left_provider_notifications()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if tg_op = 'UPDATE' and new.provider_id = old.provider_id
        and new.profile_id = old.profile_id then
        return null;
    end if;
    delete from public.notifications as n
    using public.healthcare_tickets as t
    where
        n.recipient_id = old.profile_id
        and n.ticket_id = t.id
        and (t.primary_provider_id = old.provider_id or t.secondary_provider_id = old.provider_id)
        and t.patient_id is distinct from old.profile_id
        and not exists (
            select from public.provider_members as m
            where
                m.profile_id = old.profile_id
                and (
                    m.provider_id = t.primary_provider_id
                    or (
                        m.provider_id = t.secondary_provider_id
                        and private.fulfiller_is_party(t.sent_at)
                    )
                )
        )
        and not exists (
            select from public.profile as p
            where p.id = old.profile_id and p.role = 'admin'
        );
    return null;
end
$fn$;

revoke execute on function private.notify(uuid[], uuid, text, text, text, jsonb) from public;
revoke execute on function private.provider_member_ids(uuid) from public;
revoke execute on function private.claim_pool_member_ids(text, text) from public;
revoke execute on function private.crisis_responder_ids() from public;
revoke execute on function private.ticket_label(public.healthcare_tickets) from public;
revoke execute on function private.notify_ticket_created() from public;
revoke execute on function private.notify_ticket_changed() from public;
revoke execute on function private.notify_chat_message() from public;
revoke execute on function private.forget_left_provider_notifications() from public;

drop trigger if exists notify_ticket_created on public.healthcare_tickets;
create trigger notify_ticket_created
after insert on public.healthcare_tickets
for each row execute function private.notify_ticket_created();

drop trigger if exists notify_ticket_changed on public.healthcare_tickets;
create trigger notify_ticket_changed
after update on public.healthcare_tickets
for each row execute function private.notify_ticket_changed();

drop trigger if exists notify_chat_message on public.chat_messages;
create trigger notify_chat_message
after insert on public.chat_messages
-- System messages (status updates posted by the outbox) raise no "New message".
for each row when (new.kind <> 'system')
execute function private.notify_chat_message();

drop trigger if exists forget_left_provider_notifications on public.provider_members;
create trigger forget_left_provider_notifications
after update or delete on public.provider_members
for each row execute function private.forget_left_provider_notifications();
