-- Realtime Broadcast from the database: triggers send small payloads with realtime.send on
-- private topics, 'ticket:<ticket id>' (ticket_changed, message_created, attachment_added,
-- timeline_added) and 'user:<profile id>' (notification_created). No PHI in a payload: ids,
-- types, statuses and times only; the frontend reads the row itself through RLS. Nothing is
-- broadcast for a backfill (app.source = 'backfill'). Who may receive is decided by the
-- realtime.messages policies (policies/realtime_messages.sql).

-- Sends p_payload as event p_event on private topic p_topic, unless the change comes from a
-- backfill. Security definer: the broadcast row is written whoever made the change (the
-- recipient of a notification is not its sender); the function's own settings also keep
-- realtime.send's `set local realtime.topic` from leaking into the rest of the transaction.
create or replace function private.broadcast(p_topic text, p_event text, p_payload jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if private.request_source() = 'backfill' then
        return;
    end if;
    perform realtime.send(p_payload, p_event, p_topic, true);
end
$fn$;

create or replace function private.broadcast_ticket_changed()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.broadcast(
        'ticket:' || new.id::text,
        'ticket_changed',
        pg_catalog.jsonb_build_object(
            'ticket_id', new.id, 'type', new.ticket_type, 'status', new.status,
            'operation', pg_catalog.lower(tg_op), 'at', new.updated_at
        )
    );
    return null;
end
$fn$;

-- Messages of ticket threads only: a legacy thread has no ticket channel.
create or replace function private.broadcast_message_created()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket_id uuid;
begin
    select th.ticket_id into v_ticket_id from public.chat_threads as th where th.id = new.thread_id;
    if v_ticket_id is not null then
        perform private.broadcast(
            'ticket:' || v_ticket_id::text,
            'message_created',
            pg_catalog.jsonb_build_object(
                'ticket_id', v_ticket_id, 'thread_id', new.thread_id, 'id', new.id,
                'at', new.created_at
            )
        );
    end if;
    return null;
end
$fn$;

create or replace function private.broadcast_attachment_added()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.broadcast(
        'ticket:' || new.ticket_id::text,
        'attachment_added',
        pg_catalog.jsonb_build_object(
            'ticket_id', new.ticket_id, 'id', new.id, 'type', new.kind, 'at', new.created_at
        )
    );
    return null;
end
$fn$;

create or replace function private.broadcast_timeline_added()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.broadcast(
        'ticket:' || new.ticket_id::text,
        'timeline_added',
        pg_catalog.jsonb_build_object(
            'ticket_id', new.ticket_id, 'id', new.id, 'type', new.event_type,
            'status', new.to_status, 'at', new.created_at
        )
    );
    return null;
end
$fn$;

create or replace function private.broadcast_notification_created()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    perform private.broadcast(
        'user:' || new.recipient_id::text,
        'notification_created',
        pg_catalog.jsonb_build_object(
            'id', new.id, 'ticket_id', new.ticket_id, 'type', new.type, 'at', new.created_at
        )
    );
    return null;
end
$fn$;

revoke execute on function private.broadcast(text, text, jsonb) from public;
revoke execute on function private.broadcast_ticket_changed() from public;
revoke execute on function private.broadcast_message_created() from public;
revoke execute on function private.broadcast_attachment_added() from public;
revoke execute on function private.broadcast_timeline_added() from public;
revoke execute on function private.broadcast_notification_created() from public;

drop trigger if exists broadcast_ticket_changed on public.healthcare_tickets;
create trigger broadcast_ticket_changed
after insert or update on public.healthcare_tickets
for each row execute function private.broadcast_ticket_changed();

drop trigger if exists broadcast_message_created on public.chat_messages;
create trigger broadcast_message_created
after insert on public.chat_messages
for each row execute function private.broadcast_message_created();

drop trigger if exists broadcast_attachment_added on public.ticket_attachments;
create trigger broadcast_attachment_added
after insert on public.ticket_attachments
for each row execute function private.broadcast_attachment_added();

drop trigger if exists broadcast_timeline_added on public.ticket_timeline;
create trigger broadcast_timeline_added
after insert on public.ticket_timeline
for each row execute function private.broadcast_timeline_added();

drop trigger if exists broadcast_notification_created on public.notifications;
create trigger broadcast_notification_created
after insert on public.notifications
for each row execute function private.broadcast_notification_created();
