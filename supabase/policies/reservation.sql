-- reservation: patient details, so only the reservation's practitioner and its patient read it
-- (admins do not). The practitioner updates its notes, payment status and outcome (completed,
-- no_show, cancelled; the transition trigger decides what may follow what); a patient cancels
-- through cancel_reservation. Reservations are created by approving requests.

alter table public.reservation enable row level security;

revoke all on public.reservation from anon, authenticated, service_role;
grant select on public.reservation to authenticated;
grant update (status, notes, payment_status) on public.reservation to authenticated;
grant all on public.reservation to service_role;

drop policy if exists "Practitioners and patients can read their reservations"
on public.reservation;
create policy "Practitioners and patients can read their reservations"
on public.reservation for select to authenticated
using (profile_id = (select auth.uid()) or patient_id = (select auth.uid()));

drop policy if exists "Practitioners can update their reservations" on public.reservation;
create policy "Practitioners can update their reservations"
on public.reservation for update to authenticated
using (profile_id = (select auth.uid()))
with check (profile_id = (select auth.uid()));
