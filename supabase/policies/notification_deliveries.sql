-- notification_deliveries: the outbox, written by triggers and the worker only. A recipient
-- reads their own rows' fate; admins read all.

alter table public.notification_deliveries enable row level security;

revoke all on public.notification_deliveries from anon, authenticated, service_role;
grant select on public.notification_deliveries to authenticated;
grant select, insert, update on public.notification_deliveries to service_role;

drop policy if exists "Recipients and admins can read deliveries" on public.notification_deliveries;
create policy "Recipients and admins can read deliveries"
on public.notification_deliveries for select to authenticated
using (recipient_id = (select auth.uid()) or (select private.is_admin()));
