-- chat_threads: members read their threads (a ticket's thread: its parties, kept in sync by
-- triggers), admins read all. Threads of tickets are created by the ticket; a legacy thread
-- (no ticket) may still be started by a signed-in user during the rollout. Ids are the
-- database's (a client-chosen id would reveal existing ones). Nobody deletes a ticket's thread
-- through the API (trigger keep_ticket_thread, service_role included); the service may still
-- delete legacy threads while they are migrated. A legacy thread recorded in a ticket's
-- legacy_thread_id is readable by that ticket's parties (backfill, issue 11).

alter table public.chat_threads enable row level security;

revoke all on public.chat_threads from anon, authenticated, service_role;
grant select on public.chat_threads to authenticated;
grant insert (order_id, order_type, title, metadata, created_by)
on public.chat_threads to authenticated;
grant update (title, metadata) on public.chat_threads to authenticated;
grant select, insert, update, delete on public.chat_threads to service_role;

drop policy if exists "Thread members can read threads" on public.chat_threads;
create policy "Thread members can read threads"
on public.chat_threads for select to authenticated
using (
    -- A correlated lookup of the caller's own membership (primary key), not an array of all
    -- their threads: a pharmacist is a member of thousands.
    exists (
        select from public.chat_thread_members as m
        where m.thread_id = chat_threads.id and m.profile_id = (select auth.uid())
    )
    or (ticket_id is null and created_by = (select auth.uid()))
    or (select private.is_admin())
    or (
        -- A legacy thread recorded in a ticket's legacy_thread_id (the backfill found the
        -- ticket already there) is that ticket's earlier conversation: its parties read it.
        -- The ticket's own columns decide, as its policy does (one unique-index lookup).
        ticket_id is null
        and exists (
            select from public.healthcare_tickets as t
            where
                t.legacy_thread_id = chat_threads.id
                and (
                    t.patient_id = (select auth.uid())
                    or t.primary_provider_id = any(array(select private.current_provider_ids()))
                    or (
                        t.sent_at is not null
                        and t.secondary_provider_id
                        = any(array(select private.current_provider_ids()))
                    )
                )
        )
    )
);

drop policy if exists "Users can start legacy threads" on public.chat_threads;
create policy "Users can start legacy threads"
on public.chat_threads for insert to authenticated
with check (ticket_id is null and created_by = (select auth.uid()));

drop policy if exists "Thread members can rename threads" on public.chat_threads;
create policy "Thread members can rename threads"
on public.chat_threads for update to authenticated
using (
    exists (
        select from public.chat_thread_members as m
        where m.thread_id = chat_threads.id and m.profile_id = (select auth.uid())
    )
)
with check (
    exists (
        select from public.chat_thread_members as m
        where m.thread_id = chat_threads.id and m.profile_id = (select auth.uid())
    )
);
