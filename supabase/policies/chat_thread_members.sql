-- chat_thread_members: a ticket thread's members are its parties (triggers keep them so);
-- members see who else is in the thread and mark it read. The creator of a legacy thread (no
-- ticket) manages its members, as before the rollout, but adds only people they share a ticket
-- or a provider with (private.may_add_legacy_thread_member): no unsolicited contact.
-- One permissive policy per role and action.

alter table public.chat_thread_members enable row level security;

revoke all on public.chat_thread_members from anon, authenticated, service_role;
grant select, insert, delete on public.chat_thread_members to authenticated;
grant update (last_read_at) on public.chat_thread_members to authenticated;
grant select, insert, update, delete on public.chat_thread_members to service_role;

-- The caller's own row comes first: the policies of chat_threads and chat_messages look it up
-- by primary key, and the OR stops there without computing the caller's threads.
drop policy if exists "Users can read their own memberships" on public.chat_thread_members;
drop policy if exists "Thread members can read members" on public.chat_thread_members;
drop policy if exists "Thread members can read who is in their threads"
on public.chat_thread_members;
create policy "Thread members can read who is in their threads"
on public.chat_thread_members for select to authenticated
using (
    profile_id = (select auth.uid())
    or thread_id = any(array(select private.current_thread_ids()))
    or (select private.is_admin())
);

drop policy if exists "Legacy thread creators can add members" on public.chat_thread_members;
create policy "Legacy thread creators can add members"
on public.chat_thread_members for insert to authenticated
with check (private.may_add_legacy_thread_member(thread_id, profile_id));

drop policy if exists "Members can mark their threads read" on public.chat_thread_members;
create policy "Members can mark their threads read"
on public.chat_thread_members for update to authenticated
using (profile_id = (select auth.uid()))
with check (profile_id = (select auth.uid()));

drop policy if exists "Legacy thread creators can remove members" on public.chat_thread_members;
create policy "Legacy thread creators can remove members"
on public.chat_thread_members for delete to authenticated
using (private.is_legacy_thread_creator(thread_id));
