-- notification_rules: which event tells whom, on which channels, with which texts. Admins read
-- and write them (through the API too); the triggers and the worker read them as the system.

alter table public.notification_rules enable row level security;

revoke all on public.notification_rules from anon, authenticated, service_role;
grant select, insert, update, delete on public.notification_rules to authenticated;
grant select, insert, update, delete on public.notification_rules to service_role;

drop policy if exists "Admins can read notification rules" on public.notification_rules;
create policy "Admins can read notification rules"
on public.notification_rules for select to authenticated
using ((select private.is_admin()));

drop policy if exists "Admins can add notification rules" on public.notification_rules;
create policy "Admins can add notification rules"
on public.notification_rules for insert to authenticated
with check ((select private.is_admin()));

drop policy if exists "Admins can change notification rules" on public.notification_rules;
create policy "Admins can change notification rules"
on public.notification_rules for update to authenticated
using ((select private.is_admin()))
with check ((select private.is_admin()));

drop policy if exists "Admins can delete notification rules" on public.notification_rules;
create policy "Admins can delete notification rules"
on public.notification_rules for delete to authenticated
using ((select private.is_admin()));
