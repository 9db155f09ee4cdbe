-- profile: a user reads and edits their own profile (never its id, role or default practice:
-- set_default_provider checks membership); admins read all.

alter table public.profile enable row level security;

revoke all on public.profile from anon, authenticated;
grant select on public.profile to authenticated;
-- Column list: what a user may change about themselves. id, role and email are absent, so an
-- update naming them fails with "permission denied" whatever the policies say.
grant update (
    full_name, phone, timezone, sms_opt_in, preferred_contact_method, medical_license,
    specialty, practice_type, appointment_approval_required, max_appointment_duration,
    buffer_time_minutes, cancellation_policy
) on public.profile to authenticated;
grant all on public.profile to service_role;

drop policy if exists "Users can read their own profile and admins every profile"
on public.profile;
create policy "Users can read their own profile and admins every profile"
on public.profile for select to authenticated
using (id = (select auth.uid()) or (select private.is_admin()));

drop policy if exists "Users can update their own profile" on public.profile;
create policy "Users can update their own profile"
on public.profile for update to authenticated
using (id = (select auth.uid()))
with check (id = (select auth.uid()));
