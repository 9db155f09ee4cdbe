-- Attaches the concurrently built index as chat_threads' unique constraint (so PostgREST sees a
-- one-to-one link) and validates the constraints added NOT VALID. Validation takes a lock that
-- lets reads and writes go on.

alter table public.chat_threads
add constraint chat_threads_ticket_id_key unique using index chat_threads_ticket_id_key;

alter table public.chat_threads validate constraint chat_threads_ticket_id_fkey;
alter table public.chat_messages validate constraint chat_messages_kind_check;
