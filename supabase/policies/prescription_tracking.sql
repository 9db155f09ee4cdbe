-- prescription_tracking: the ticket's parties read it; only the system (Lifefile processing,
-- triggers) writes it.

alter table public.prescription_tracking enable row level security;

revoke all on public.prescription_tracking from anon, authenticated;
grant select on public.prescription_tracking to authenticated;
grant all on public.prescription_tracking to service_role;

drop policy if exists "Ticket parties can read prescription tracking"
on public.prescription_tracking;
create policy "Ticket parties can read prescription tracking"
on public.prescription_tracking for select to authenticated
using (private.is_ticket_party(ticket_id));
