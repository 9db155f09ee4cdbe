-- provider_members: members read their provider's membership; owners remove staff and invite
-- new staff (invite_provider_member: membership starts when the invitee accepts), never insert
-- memberships of other users; admins manage every membership directly. Every change is
-- recorded in provider_membership_events.

alter table public.provider_members enable row level security;

revoke all on public.provider_members from anon, authenticated;
grant select, insert, update, delete on public.provider_members to authenticated;
grant all on public.provider_members to service_role;

drop policy if exists "Provider members can read their provider's membership"
on public.provider_members;
create policy "Provider members can read their provider's membership"
on public.provider_members for select to authenticated
using (
    provider_id = any(array(select private.current_provider_ids()))
    or (select private.is_admin())
);

drop policy if exists "Admins can add members" on public.provider_members;
create policy "Admins can add members"
on public.provider_members for insert to authenticated
with check ((select private.is_admin()));

drop policy if exists "Admins can change memberships" on public.provider_members;
create policy "Admins can change memberships"
on public.provider_members for update to authenticated
using ((select private.is_admin()))
with check ((select private.is_admin()));

drop policy if exists "Provider owners can remove staff" on public.provider_members;
create policy "Provider owners can remove staff"
on public.provider_members for delete to authenticated
using (
    (member_role = 'staff' and private.is_provider_owner(provider_id))
    or (select private.is_admin())
);
