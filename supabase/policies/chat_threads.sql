-- chat_threads: members read their threads (a ticket's thread: its parties, kept in sync by
-- triggers), admins read all. Threads of tickets are created by the ticket; a legacy thread
-- (no ticket) may still be started by a signed-in user during the rollout.

alter table public.chat_threads enable row level security;

revoke all on public.chat_threads from anon, authenticated, service_role;
grant select on public.chat_threads to authenticated;
grant insert (id, order_id, order_type, title, metadata, created_by)
on public.chat_threads to authenticated;
grant update (title, metadata) on public.chat_threads to authenticated;
grant select, insert, update, delete on public.chat_threads to service_role;

drop policy if exists "Thread members can read threads" on public.chat_threads;
create policy "Thread members can read threads"
on public.chat_threads for select to authenticated
using (
    id = any(array(select private.current_thread_ids()))
    or (ticket_id is null and created_by = (select auth.uid()))
    or (select private.is_admin())
);

drop policy if exists "Users can start legacy threads" on public.chat_threads;
create policy "Users can start legacy threads"
on public.chat_threads for insert to authenticated
with check (ticket_id is null and created_by = (select auth.uid()));

drop policy if exists "Thread members can rename threads" on public.chat_threads;
create policy "Thread members can rename threads"
on public.chat_threads for update to authenticated
using (id = any(array(select private.current_thread_ids())))
with check (id = any(array(select private.current_thread_ids())));
