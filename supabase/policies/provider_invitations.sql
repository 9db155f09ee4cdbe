-- provider_invitations: the invitee, the provider's owners and admins read an invitation.
-- Nobody writes it directly: invite_provider_member, accept_provider_invitation,
-- decline_provider_invitation and revoke_provider_invitation do.

alter table public.provider_invitations enable row level security;

revoke all on public.provider_invitations from anon, authenticated, service_role;
grant select on public.provider_invitations to authenticated;
grant select, insert, update on public.provider_invitations to service_role;

drop policy if exists "Invitees and provider owners or admins can read invitations"
on public.provider_invitations;
create policy "Invitees and provider owners or admins can read invitations"
on public.provider_invitations for select to authenticated
using (
    invitee_id = (select auth.uid())
    or provider_id = any(array(select private.current_owned_provider_ids()))
    or (select private.is_admin())
);
