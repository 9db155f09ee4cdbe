-- reservation_request: patient details, so only the request's practitioner and its patient
-- read it (admins do not). Nobody writes it directly: request_reservation creates requests,
-- approve_reservation_request / reject_reservation_request decide them.

alter table public.reservation_request enable row level security;

revoke all on public.reservation_request from anon, authenticated, service_role;
grant select on public.reservation_request to authenticated;
grant all on public.reservation_request to service_role;

drop policy if exists "Practitioners and patients can read their requests"
on public.reservation_request;
create policy "Practitioners and patients can read their requests"
on public.reservation_request for select to authenticated
using (profile_id = (select auth.uid()) or patient_id = (select auth.uid()));
