-- medical_service: the public catalogue. Anyone (anon too) reads active services; a
-- practitioner manages their own (deactivate rather than delete: slots and bookings hang off a
-- service); admins read all.

alter table public.medical_service enable row level security;

revoke all on public.medical_service from anon, authenticated, service_role;
grant select on public.medical_service to anon;
grant select on public.medical_service to authenticated;
grant insert (
    profile_id, name, description, duration, price, category, requirements, is_active
) on public.medical_service to authenticated;
grant update (
    name, description, duration, price, category, requirements, is_active
) on public.medical_service to authenticated;
grant all on public.medical_service to service_role;

drop policy if exists "Anyone can read active services" on public.medical_service;
create policy "Anyone can read active services"
on public.medical_service for select to anon
using (is_active);

-- One policy per role and action (Supabase advisors): the catalogue, plus one's own services
-- (withdrawn ones too) and, for admins, every service.
drop policy if exists "Users can read active services and owners or admins all"
on public.medical_service;
create policy "Users can read active services and owners or admins all"
on public.medical_service for select to authenticated
using (is_active or profile_id = (select auth.uid()) or (select private.is_admin()));

drop policy if exists "Practitioners can add their own services" on public.medical_service;
create policy "Practitioners can add their own services"
on public.medical_service for insert to authenticated
with check (profile_id = (select auth.uid()) and (select private.is_practitioner()));

drop policy if exists "Practitioners can update their own services" on public.medical_service;
create policy "Practitioners can update their own services"
on public.medical_service for update to authenticated
using (profile_id = (select auth.uid()))
with check (profile_id = (select auth.uid()));
