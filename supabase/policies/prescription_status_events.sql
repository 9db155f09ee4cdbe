-- prescription_status_events: the ticket's parties read the history; only the system writes it.

alter table public.prescription_status_events enable row level security;

revoke all on public.prescription_status_events from anon, authenticated;
grant select on public.prescription_status_events to authenticated;
grant all on public.prescription_status_events to service_role;

drop policy if exists "Ticket parties can read prescription status events"
on public.prescription_status_events;
create policy "Ticket parties can read prescription status events"
on public.prescription_status_events for select to authenticated
using (private.is_ticket_party(ticket_id));
