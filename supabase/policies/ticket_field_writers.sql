-- ticket_field_writers: which party writes which column of healthcare_tickets per ticket type,
-- as data seeded by migrations and enforced by the ticket update trigger. Every signed-in user
-- reads it (a frontend shows what is editable); nobody changes it through the API.

alter table public.ticket_field_writers enable row level security;

revoke all on public.ticket_field_writers from anon, authenticated, service_role;
grant select on public.ticket_field_writers to authenticated, service_role;

drop policy if exists "Signed-in users can read who writes ticket fields"
on public.ticket_field_writers;
create policy "Signed-in users can read who writes ticket fields"
on public.ticket_field_writers for select to authenticated
using (true);
