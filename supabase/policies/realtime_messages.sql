-- Realtime: the ticket tables in the supabase_realtime publication, and Realtime Authorization
-- on realtime.messages: only a ticket's parties join (receive on, send to) its private channel
-- 'ticket:<ticket id>', and only the user receives on 'user:<profile id>' (their notifications;
-- the database alone sends there, see functions-sql/realtime_broadcast.sql). Each policy binds
-- the row too: its topic is the channel's, so a party of one ticket never reads or writes
-- another channel's rows. The scheduling tables join the
-- publication with their own policies.

do $publication$
declare
    v_table text;
begin
    foreach v_table in array array[
        'healthcare_tickets', 'chat_threads', 'chat_messages', 'notifications', 'ticket_timeline'
    ] loop
        if not exists (
            select from pg_catalog.pg_publication_tables
            where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = v_table
        ) then
            execute pg_catalog.format(
                'alter publication supabase_realtime add table public.%I', v_table
            );
        end if;
    end loop;
end
$publication$;

drop policy if exists "Ticket parties can receive on ticket channels" on realtime.messages;
drop policy if exists "Ticket parties and the user can receive on their channels"
on realtime.messages;
create policy "Ticket parties and the user can receive on their channels"
on realtime.messages for select to authenticated
using (
    topic = (select realtime.topic())
    and (
        topic = 'user:' || (select auth.uid())::text
        or (select private.can_join_ticket_channel((select realtime.topic())))
    )
);

drop policy if exists "Ticket parties can send on ticket channels" on realtime.messages;
create policy "Ticket parties can send on ticket channels"
on realtime.messages for insert to authenticated
with check (
    topic = (select realtime.topic())
    and (select private.can_join_ticket_channel((select realtime.topic())))
);
