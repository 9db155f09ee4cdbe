-- ticket_statuses: part of the ticket state machines, which are data seeded by migrations. Every
-- signed-in user reads them (a frontend shows the allowed actions); nobody changes them
-- through the API.

alter table public.ticket_statuses enable row level security;

revoke all on public.ticket_statuses from anon, authenticated, service_role;
grant select on public.ticket_statuses to authenticated, service_role;

drop policy if exists "Signed-in users can read ticket statuses" on public.ticket_statuses;
create policy "Signed-in users can read ticket statuses"
on public.ticket_statuses for select to authenticated
using (true);
