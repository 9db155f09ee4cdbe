-- providers: signed-in users read active providers (members also their inactive one);
-- admins manage them.

alter table public.providers enable row level security;

revoke all on public.providers from anon, authenticated;
grant select, insert, update, delete on public.providers to authenticated;
grant all on public.providers to service_role;

drop policy if exists "Signed-in users can read active providers" on public.providers;
create policy "Signed-in users can read active providers"
on public.providers for select to authenticated
using (
    is_active
    or id = any(array(select private.current_provider_ids()))
    or (select private.is_admin())
);

drop policy if exists "Admins can add providers" on public.providers;
create policy "Admins can add providers"
on public.providers for insert to authenticated
with check ((select private.is_admin()));

drop policy if exists "Admins can update providers" on public.providers;
create policy "Admins can update providers"
on public.providers for update to authenticated
using ((select private.is_admin()))
with check ((select private.is_admin()));

drop policy if exists "Admins can delete providers" on public.providers;
create policy "Admins can delete providers"
on public.providers for delete to authenticated
using ((select private.is_admin()));
