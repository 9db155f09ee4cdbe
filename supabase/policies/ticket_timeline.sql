-- ticket_timeline: written by triggers only, append-only for everyone (service included);
-- a ticket's parties read its timeline.

alter table public.ticket_timeline enable row level security;

revoke all on public.ticket_timeline from anon, authenticated, service_role;
grant select on public.ticket_timeline to authenticated, service_role;

drop policy if exists "Ticket parties can read the timeline" on public.ticket_timeline;
create policy "Ticket parties can read the timeline"
on public.ticket_timeline for select to authenticated
using (private.is_ticket_party(ticket_id));
