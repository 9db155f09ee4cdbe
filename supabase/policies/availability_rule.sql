-- availability_rule: a practitioner's weekly working hours, managed by that practitioner only
-- (patients see the slots generated from them, never the rules); admins read all.

alter table public.availability_rule enable row level security;

revoke all on public.availability_rule from anon, authenticated, service_role;
grant select, delete on public.availability_rule to authenticated;
grant insert (
    profile_id, service_id, day_of_week, start_time, end_time, slot_duration, buffer_time,
    max_appointments_per_slot, is_active, effective_from, effective_to
) on public.availability_rule to authenticated;
grant update (
    service_id, day_of_week, start_time, end_time, slot_duration, buffer_time,
    max_appointments_per_slot, is_active, effective_from, effective_to
) on public.availability_rule to authenticated;
grant all on public.availability_rule to service_role;

drop policy if exists "Practitioners and admins can read availability rules"
on public.availability_rule;
create policy "Practitioners and admins can read availability rules"
on public.availability_rule for select to authenticated
using (profile_id = (select auth.uid()) or (select private.is_admin()));

drop policy if exists "Practitioners can add their own availability rules"
on public.availability_rule;
create policy "Practitioners can add their own availability rules"
on public.availability_rule for insert to authenticated
with check (profile_id = (select auth.uid()) and (select private.is_practitioner()));

drop policy if exists "Practitioners can update their own availability rules"
on public.availability_rule;
create policy "Practitioners can update their own availability rules"
on public.availability_rule for update to authenticated
using (profile_id = (select auth.uid()))
with check (profile_id = (select auth.uid()));

drop policy if exists "Practitioners can delete their own availability rules"
on public.availability_rule;
create policy "Practitioners can delete their own availability rules"
on public.availability_rule for delete to authenticated
using (profile_id = (select auth.uid()));
