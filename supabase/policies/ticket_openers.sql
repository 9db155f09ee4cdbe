-- ticket_openers: who may open which ticket type, as data seeded by migrations and enforced by
-- the ticket insert trigger. Every signed-in user reads it (a frontend shows what they may
-- open); nobody changes it through the API.

alter table public.ticket_openers enable row level security;

revoke all on public.ticket_openers from anon, authenticated, service_role;
grant select on public.ticket_openers to authenticated, service_role;

drop policy if exists "Signed-in users can read who opens tickets" on public.ticket_openers;
create policy "Signed-in users can read who opens tickets"
on public.ticket_openers for select to authenticated
using (true);
