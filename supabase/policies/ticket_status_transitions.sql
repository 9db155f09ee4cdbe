-- ticket_status_transitions: part of the ticket state machines, which are data seeded by
-- migrations. Every signed-in user reads them (a frontend shows the allowed actions); nobody
-- changes them through the API.

alter table public.ticket_status_transitions enable row level security;

revoke all on public.ticket_status_transitions from anon, authenticated, service_role;
grant select on public.ticket_status_transitions to authenticated, service_role;

drop policy if exists "Signed-in users can read status transitions"
on public.ticket_status_transitions;
create policy "Signed-in users can read status transitions"
on public.ticket_status_transitions for select to authenticated
using (true);
