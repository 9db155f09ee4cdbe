-- chat_messages: thread members read and post (as themselves: a trigger refuses impersonation,
-- and a prescription ticket's thread is closed until its prescription is attached); admins read;
-- the parties of a ticket read the legacy thread recorded in its legacy_thread_id.
-- Messages are not edited or deleted through the API (service_role included: they are kept
-- with their ticket); ids are the database's.

alter table public.chat_messages enable row level security;

revoke all on public.chat_messages from anon, authenticated, service_role;
grant select on public.chat_messages to authenticated;
grant insert (thread_id, sender_id, body, kind, metadata)
on public.chat_messages to authenticated;
grant select, insert, update on public.chat_messages to service_role;

drop policy if exists "Thread members can read messages" on public.chat_messages;
create policy "Thread members can read messages"
on public.chat_messages for select to authenticated
using (
    -- The caller's own membership row (primary key lookup): cheap per row, where an array of
    -- every thread the caller is in would cost per statement what a busy pharmacist has.
    exists (
        select from public.chat_thread_members as m
        where m.thread_id = chat_messages.thread_id and m.profile_id = (select auth.uid())
    )
    or (select private.is_admin())
    or exists (
        -- The messages of a legacy thread recorded in a ticket's legacy_thread_id, to that
        -- ticket's parties (its earlier conversation; see chat_threads.sql).
        select from public.healthcare_tickets as t
        where
            t.legacy_thread_id = chat_messages.thread_id
            and (
                t.patient_id = (select auth.uid())
                or t.primary_provider_id = any(array(select private.current_provider_ids()))
                or (
                    t.sent_at is not null
                    and t.secondary_provider_id = any(array(select private.current_provider_ids()))
                )
            )
    )
);

drop policy if exists "Thread members can post messages" on public.chat_messages;
create policy "Thread members can post messages"
on public.chat_messages for insert to authenticated
with check (
    sender_id = (select auth.uid())
    and exists (
        select from public.chat_thread_members as m
        where m.thread_id = chat_messages.thread_id and m.profile_id = (select auth.uid())
    )
);
