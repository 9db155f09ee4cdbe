-- carehub: no-transaction
-- The message and thread policies look up the caller's own membership; when the planner
-- hashes all of a busy member's memberships instead, this index answers from the index alone
-- (the legacy index on profile_id alone sends it to the heap for every row).
create index concurrently if not exists chat_thread_members_profile_thread_idx
on public.chat_thread_members (profile_id, thread_id);
