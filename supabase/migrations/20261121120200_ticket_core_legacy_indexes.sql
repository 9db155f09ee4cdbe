-- carehub: no-transaction
-- Indexes on the legacy chat and prescription tables, built without blocking writers (the live
-- tables are large). Each statement is re-runnable, so a run interrupted midway can resume.

-- One thread per ticket; also the index behind chat_threads_ticket_id_fkey and the unique
-- constraint the next migration attaches to it.
create unique index concurrently if not exists chat_threads_ticket_id_key
on public.chat_threads (ticket_id);

-- The pharmacy integration looks prescriptions up by the pharmacy system's order id.
create index concurrently if not exists prescriptions_external_order_id_idx
on public.prescriptions (external_order_id);

-- The message and thread policies look up the caller's own membership; when the planner
-- hashes all of a busy member's memberships instead, this index answers from the index alone
-- (the legacy index on profile_id alone sends it to the heap for every row).
create index concurrently if not exists chat_thread_members_profile_thread_idx
on public.chat_thread_members (profile_id, thread_id);
