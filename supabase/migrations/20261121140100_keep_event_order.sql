-- Timeline rows, notifications and messages written in one transaction (a worker batch of
-- Lifefile events, a ticket moved through several statuses) all got the transaction's now(),
-- so ordering by created_at lost their order. clock_timestamp() keeps it.

alter table public.ticket_timeline alter column created_at set default clock_timestamp();
alter table public.notifications alter column created_at set default clock_timestamp();
alter table public.chat_messages alter column created_at set default clock_timestamp();
