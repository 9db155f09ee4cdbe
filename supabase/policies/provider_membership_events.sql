-- provider_membership_events: append-only, written by triggers and the invitation functions;
-- the member it is about, the provider's owners and admins read it.

alter table public.provider_membership_events enable row level security;

revoke all on public.provider_membership_events from anon, authenticated, service_role;
grant select on public.provider_membership_events to authenticated, service_role;

drop policy if exists "Members and owners or admins can read membership events"
on public.provider_membership_events;
create policy "Members and owners or admins can read membership events"
on public.provider_membership_events for select to authenticated
using (
    profile_id = (select auth.uid())
    or provider_id = any(array(select private.current_owned_provider_ids()))
    or (select private.is_admin())
);
