-- Provider membership by consent: invitations (invite, accept, decline, revoke), the log of
-- membership changes, and the practitioner's default practice.
--
-- Who may do what: an owner of a provider invites its staff; an admin invites owners and staff,
-- and may also add, change and remove memberships directly (provider_members policies); only
-- the invitee accepts or declines; the provider's owners (staff invitations) and admins revoke
-- a pending invitation. Every change of a membership row, whoever makes it, is recorded in
-- provider_membership_events by a trigger; the invitation steps are recorded by the functions.

-- Helpers ----------------------------------------------------------------------------------

-- Appends one row to provider_membership_events; the actor is the signed-in user, or the
-- system for sessions without an API role.
create or replace function private.record_membership_event(
    p_provider_id uuid,
    p_profile_id uuid,
    p_event text,
    p_member_role text,
    p_previous_role text,
    p_invitation_id uuid
)
returns void
language sql
security definer
set search_path = ''
as $fn$
    insert into public.provider_membership_events (
        provider_id, profile_id, event, member_role, previous_role, invitation_id, actor_id,
        actor_kind
    )
    values (
        p_provider_id,
        p_profile_id,
        p_event,
        p_member_role,
        p_previous_role,
        p_invitation_id,
        case when private.is_api_request() then (select auth.uid()) end,
        case when private.is_api_request() then 'user' else 'system' end
    )
$fn$;

-- Triggers: provider_members -----------------------------------------------------------------

-- Records each membership change (added, role_changed, removed). A removed member's default
-- practice is cleared when it was this provider.
create or replace function private.record_provider_membership_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if tg_op = 'INSERT' then
        perform private.record_membership_event(
            new.provider_id, new.profile_id, 'added', new.member_role, null, null
        );
    elsif tg_op = 'UPDATE' then
        if new.member_role is distinct from old.member_role then
            perform private.record_membership_event(
                new.provider_id, new.profile_id, 'role_changed', new.member_role,
                old.member_role, null
            );
        end if;
    else
        perform private.record_membership_event(
            old.provider_id, old.profile_id, 'removed', null, old.member_role, null
        );
        update public.profile as p
        set default_provider_id = null
        where p.id = old.profile_id and p.default_provider_id = old.provider_id;
    end if;
    return null;
end
$fn$;

-- RPC: invitations -------------------------------------------------------------------------

-- invite_provider_member(p_provider_id, p_profile_id, p_member_role) returns
-- provider_invitations
-- Invites user p_profile_id to act for provider p_provider_id as p_member_role ('staff' or
-- 'owner'). An owner of the provider invites staff; an admin (or the system) invites owners
-- and staff. The invitee is notified (notifications, type 'provider_invitation') and becomes a
-- member only by accepting. Inviting again with the same role returns the pending invitation.
-- Raises 22023 (missing argument, unknown role), CH008 (the caller may not invite to this
-- provider with this role), P0002 (no such user), 23505 (already a member, or invited with
-- another role: revoke that invitation first).
create or replace function private.invite_provider_member(
    p_provider_id uuid, p_profile_id uuid, p_member_role text
)
returns public.provider_invitations
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_invitation public.provider_invitations;
    v_provider_name text;
begin
    if p_provider_id is null or p_profile_id is null then
        raise exception 'invite_provider_member needs a provider and a user'
            using errcode = '22023';
    elsif p_member_role is null or p_member_role not in ('owner', 'staff') then
        raise exception 'member role must be owner or staff, not %', p_member_role
            using errcode = '22023';
    end if;
    -- Authorisation first: nobody learns anything about a provider they may not invite to.
    if private.is_api_request() and not private.is_admin() and not (
        p_member_role = 'staff' and private.is_provider_owner(p_provider_id)
    ) then
        raise exception 'only an owner of the provider invites its staff, and only an admin '
            'invites owners (CH008)'
            using errcode = 'CH008';
    end if;
    select p.name into v_provider_name from public.providers as p where p.id = p_provider_id;
    if not found then
        raise exception 'provider % does not exist', p_provider_id using errcode = 'P0002';
    end if;
    if not exists (select from public.profile as u where u.id = p_profile_id) then
        raise exception 'no user has id %', p_profile_id
            using errcode = 'P0002', hint = 'Invite the user by their profile id.';
    end if;
    -- Concurrent invitations of one person to one provider take turns.
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
        'carehub.provider_invitation:' || p_provider_id::text || ':' || p_profile_id::text, 0
    ));
    if exists (
        select from public.provider_members as m
        where m.provider_id = p_provider_id and m.profile_id = p_profile_id
    ) then
        raise exception 'user % already acts for %', p_profile_id, v_provider_name
            using errcode = '23505',
            hint = 'Ask an admin to change the member''s role instead.';
    end if;
    select i.* into v_invitation
    from public.provider_invitations as i
    where
        i.provider_id = p_provider_id
        and i.invitee_id = p_profile_id
        and i.status = 'pending';
    if found then
        if v_invitation.member_role = p_member_role then
            return v_invitation;
        end if;
        raise exception 'user % already has a pending invitation to % as %',
            p_profile_id, v_provider_name, v_invitation.member_role
            using errcode = '23505',
            hint = 'Revoke that invitation (revoke_provider_invitation) and invite again.';
    end if;

    insert into public.provider_invitations (provider_id, invitee_id, member_role, invited_by)
    values (
        p_provider_id,
        p_profile_id,
        p_member_role,
        case when private.is_api_request() then (select auth.uid()) end
    )
    returning * into v_invitation;
    perform private.record_membership_event(
        p_provider_id, p_profile_id, 'invited', p_member_role, null, v_invitation.id
    );
    insert into public.notifications (recipient_id, type, title, body, data)
    values (
        p_profile_id,
        'provider_invitation',
        'Invitation to join ' || v_provider_name,
        'You are invited to act for ' || v_provider_name || ' as ' || p_member_role
        || '. Accept or decline the invitation in your invitations.',
        pg_catalog.jsonb_build_object(
            'invitation_id', v_invitation.id,
            'provider_id', p_provider_id,
            'member_role', p_member_role
        )
    );
    return v_invitation;
end
$fn$;

-- The pending invitation p_invitation_id, locked, when the caller may decide it as p_action
-- ('accept' or 'decline': the invitee; 'revoke': an owner of the provider for staff
-- invitations, an admin for any). The system may do all three.
-- Raises CH008 (no such invitation for this caller: the same answer whether it exists or not),
-- CH006 (no longer pending).
create or replace function private.lock_provider_invitation(
    p_invitation_id uuid, p_action text
)
returns public.provider_invitations
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_invitation public.provider_invitations;
    v_allowed boolean;
begin
    select i.* into v_invitation
    from public.provider_invitations as i
    where i.id = p_invitation_id
    for update;
    v_allowed := found and (
        not private.is_api_request()
        or case
            when p_action = 'revoke' then
                private.is_admin()
                or (
                    v_invitation.member_role = 'staff'
                    and private.is_provider_owner(v_invitation.provider_id)
                )
            else v_invitation.invitee_id = (select auth.uid())
        end
    );
    if not coalesce(v_allowed, false) then
        raise exception 'there is no invitation % you can %', p_invitation_id, p_action
            using errcode = 'CH008',
            hint = 'List your invitations: select from provider_invitations.';
    elsif v_invitation.status <> 'pending' then
        raise exception 'invitation % is already % (CH006)', p_invitation_id,
            v_invitation.status
            using errcode = 'CH006', hint = 'Only pending invitations can be decided.';
    end if;
    return v_invitation;
end
$fn$;

-- accept_provider_invitation(p_invitation_id) returns provider_members
-- The invitee accepts a pending invitation and becomes a member with its role (an existing
-- staff member invited as owner becomes owner). Returns the membership.
-- Raises CH008 (not an invitation of the caller), CH006 (no longer pending).
create or replace function private.accept_provider_invitation(p_invitation_id uuid)
returns public.provider_members
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_invitation public.provider_invitations;
    v_member public.provider_members;
begin
    v_invitation := private.lock_provider_invitation(p_invitation_id, 'accept');
    update public.provider_invitations as i
    set status = 'accepted', decided_at = pg_catalog.clock_timestamp()
    where i.id = p_invitation_id;
    perform private.record_membership_event(
        v_invitation.provider_id, v_invitation.invitee_id, 'accepted', v_invitation.member_role,
        null, p_invitation_id
    );
    insert into public.provider_members as m (provider_id, profile_id, member_role)
    values (v_invitation.provider_id, v_invitation.invitee_id, v_invitation.member_role)
    on conflict (provider_id, profile_id) do update
        set member_role = 'owner'
        where excluded.member_role = 'owner';
    select m.* into v_member
    from public.provider_members as m
    where m.provider_id = v_invitation.provider_id and m.profile_id = v_invitation.invitee_id;
    return v_member;
end
$fn$;

-- decline_provider_invitation(p_invitation_id) returns provider_invitations
-- The invitee declines a pending invitation. Raises CH008 (not an invitation of the caller),
-- CH006 (no longer pending).
create or replace function private.decline_provider_invitation(p_invitation_id uuid)
returns public.provider_invitations
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_invitation public.provider_invitations;
begin
    v_invitation := private.lock_provider_invitation(p_invitation_id, 'decline');
    update public.provider_invitations as i
    set status = 'declined', decided_at = pg_catalog.clock_timestamp()
    where i.id = p_invitation_id
    returning i.* into v_invitation;
    perform private.record_membership_event(
        v_invitation.provider_id, v_invitation.invitee_id, 'declined', v_invitation.member_role,
        null, p_invitation_id
    );
    return v_invitation;
end
$fn$;

-- revoke_provider_invitation(p_invitation_id) returns provider_invitations
-- An owner of the provider (staff invitations) or an admin withdraws a pending invitation.
-- Raises CH008 (not an invitation the caller may revoke), CH006 (no longer pending).
create or replace function private.revoke_provider_invitation(p_invitation_id uuid)
returns public.provider_invitations
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_invitation public.provider_invitations;
begin
    v_invitation := private.lock_provider_invitation(p_invitation_id, 'revoke');
    update public.provider_invitations as i
    set status = 'revoked', decided_at = pg_catalog.clock_timestamp()
    where i.id = p_invitation_id
    returning i.* into v_invitation;
    perform private.record_membership_event(
        v_invitation.provider_id, v_invitation.invitee_id, 'revoked', v_invitation.member_role,
        null, p_invitation_id
    );
    return v_invitation;
end
$fn$;

-- set_default_provider(p_provider_id) returns profile
-- The signed-in user names the provider they act for by default (null clears it); they must
-- be a member. get_or_create_prescription_ticket takes a practitioner's default doctor or
-- clinic provider as the ticket's requester.
-- Raises 42501 (nobody signed in), CH008 (not a member of that provider).
create or replace function private.set_default_provider(p_provider_id uuid)
returns public.profile
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_profile public.profile;
begin
    if (select auth.uid()) is null then
        raise exception 'sign in to set your default practice' using errcode = '42501';
    elsif p_provider_id is not null and not private.is_provider_member(p_provider_id) then
        raise exception 'you do not act for provider % (CH008)', p_provider_id
            using errcode = 'CH008',
            hint = 'Ask an owner of the practice to invite you, and accept the invitation.';
    end if;
    update public.profile as p
    set default_provider_id = p_provider_id
    where p.id = (select auth.uid())
    returning p.* into v_profile;
    return v_profile;
end
$fn$;

-- RPC: the API (security invoker) --------------------------------------------------------

-- Security invoker wrappers of the private functions above (documented there): Supabase
-- advisors allow no security definer function in an exposed schema.

create or replace function public.invite_provider_member(
    p_provider_id uuid, p_profile_id uuid, p_member_role text default 'staff'
)
returns public.provider_invitations
language sql
set search_path = ''
as $fn$
    select private.invite_provider_member(p_provider_id, p_profile_id, p_member_role)
$fn$;

create or replace function public.accept_provider_invitation(p_invitation_id uuid)
returns public.provider_members
language sql
set search_path = ''
as $fn$
    select private.accept_provider_invitation(p_invitation_id)
$fn$;

create or replace function public.decline_provider_invitation(p_invitation_id uuid)
returns public.provider_invitations
language sql
set search_path = ''
as $fn$
    select private.decline_provider_invitation(p_invitation_id)
$fn$;

create or replace function public.revoke_provider_invitation(p_invitation_id uuid)
returns public.provider_invitations
language sql
set search_path = ''
as $fn$
    select private.revoke_provider_invitation(p_invitation_id)
$fn$;

create or replace function public.set_default_provider(p_provider_id uuid)
returns public.profile
language sql
set search_path = ''
as $fn$
    select private.set_default_provider(p_provider_id)
$fn$;

-- Privileges -------------------------------------------------------------------------------

revoke execute on function private.record_membership_event(uuid, uuid, text, text, text, uuid)
from public;
revoke execute on function private.record_provider_membership_change() from public;
revoke execute on function private.invite_provider_member(uuid, uuid, text) from public;
revoke execute on function private.lock_provider_invitation(uuid, text) from public;
revoke execute on function private.accept_provider_invitation(uuid) from public;
revoke execute on function private.decline_provider_invitation(uuid) from public;
revoke execute on function private.revoke_provider_invitation(uuid) from public;
revoke execute on function private.set_default_provider(uuid) from public;
grant execute on function private.invite_provider_member(uuid, uuid, text)
to authenticated, service_role;
grant execute on function private.accept_provider_invitation(uuid) to authenticated, service_role;
grant execute on function private.decline_provider_invitation(uuid)
to authenticated, service_role;
grant execute on function private.revoke_provider_invitation(uuid) to authenticated, service_role;
grant execute on function private.set_default_provider(uuid) to authenticated, service_role;

revoke execute on function public.invite_provider_member(uuid, uuid, text) from public, anon;
revoke execute on function public.accept_provider_invitation(uuid) from public, anon;
revoke execute on function public.decline_provider_invitation(uuid) from public, anon;
revoke execute on function public.revoke_provider_invitation(uuid) from public, anon;
revoke execute on function public.set_default_provider(uuid) from public, anon;
grant execute on function public.invite_provider_member(uuid, uuid, text)
to authenticated, service_role;
grant execute on function public.accept_provider_invitation(uuid) to authenticated, service_role;
grant execute on function public.decline_provider_invitation(uuid) to authenticated, service_role;
grant execute on function public.revoke_provider_invitation(uuid) to authenticated, service_role;
grant execute on function public.set_default_provider(uuid) to authenticated, service_role;

-- Triggers ---------------------------------------------------------------------------------

drop trigger if exists record_provider_membership_change on public.provider_members;
create trigger record_provider_membership_change
after insert or update or delete on public.provider_members
for each row execute function private.record_provider_membership_change();
