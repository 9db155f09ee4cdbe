-- ticket_types: part of the ticket state machines, which are data seeded by migrations. Every
-- signed-in user reads them (a frontend shows the allowed actions); nobody changes them
-- through the API.

alter table public.ticket_types enable row level security;

revoke all on public.ticket_types from anon, authenticated, service_role;
grant select on public.ticket_types to authenticated, service_role;

drop policy if exists "Signed-in users can read ticket types" on public.ticket_types;
create policy "Signed-in users can read ticket types"
on public.ticket_types for select to authenticated
using (true);
