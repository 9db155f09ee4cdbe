-- Identity: profiles follow auth.users; helpers that RLS policies use to know who is asking.

-- A time zone name PostgreSQL knows (IANA names such as 'Europe/Madrid').
create or replace function private.is_valid_timezone(p_timezone text)
returns boolean
language plpgsql immutable
set search_path = ''
as $fn$
begin
    perform pg_catalog.now() at time zone p_timezone;
    return true;
exception when invalid_parameter_value then
    return false;
end
$fn$;

-- Creates the profile of a new auth.users row. The role comes from raw_app_meta_data, which
-- only the service role can write, never from user metadata, which the user controls.
create or replace function private.handle_new_auth_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_role text := coalesce(nullif(new.raw_app_meta_data ->> 'role', ''), 'patient');
begin
    if v_role not in (
        'patient', 'doctor', 'pharmacist', 'specialist', 'diagnostics', 'counselor', 'admin'
    ) then
        raise exception 'unknown role % in raw_app_meta_data of user %', v_role, new.id
            using errcode = '22023',
            hint = 'Use one of patient, doctor, pharmacist, specialist, diagnostics, '
            || 'counselor, admin.';
    end if;
    insert into public.profile (id, role, email, phone, full_name)
    values (
        new.id,
        v_role,
        new.email,
        private.e164(new.phone),
        nullif(new.raw_user_meta_data ->> 'full_name', '')
    );
    return new;
end
$fn$;

-- auth.users keeps phone numbers without the leading '+'; profiles keep E.164.
create or replace function private.e164(p_phone text)
returns text
language sql immutable
set search_path = ''
as $fn$
    select case
        when nullif(p_phone, '') is null then null
        when p_phone like '+%' then p_phone
        else '+' || p_phone
    end
$fn$;

-- Keeps the profile's contact details equal to the account's.
create or replace function private.sync_auth_user_contact()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    update public.profile
    set email = new.email, phone = private.e164(new.phone)
    where id = new.id;
    return new;
end
$fn$;

-- The providers the caller acts for. Policies call it as
-- `= any (array(select private.current_provider_ids()))` so it runs once per statement.
-- PL/pgSQL, like the other helpers policies call once per statement (current_owned_provider_ids,
-- is_admin): a SQL function that cannot be inlined (security definer, search_path) has its body
-- parsed and planned again by every statement that calls it (about 60 us a call; a pharmacy's
-- inbox calls this one three times), where PL/pgSQL keeps its plan for the session (12 us).
create or replace function private.current_provider_ids()
returns setof uuid
language plpgsql stable
security definer
set search_path = ''
as $fn$
begin
    return query
    select m.provider_id
    from public.provider_members as m
    where m.profile_id = (select auth.uid());
end
$fn$;

create or replace function private.is_provider_member(p_provider_id uuid)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.provider_members as m
        where m.provider_id = p_provider_id and m.profile_id = (select auth.uid())
    )
$fn$;

create or replace function private.is_provider_owner(p_provider_id uuid)
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.provider_members as m
        where
            m.provider_id = p_provider_id
            and m.profile_id = (select auth.uid())
            and m.member_role = 'owner'
    )
$fn$;

-- The providers the caller owns; policies call it like private.current_provider_ids() (and
-- it is PL/pgSQL for the same reason).
create or replace function private.current_owned_provider_ids()
returns setof uuid
language plpgsql stable
security definer
set search_path = ''
as $fn$
begin
    return query
    select m.provider_id
    from public.provider_members as m
    where m.profile_id = (select auth.uid()) and m.member_role = 'owner';
end
$fn$;

-- Whether the caller is an admin. Policies call it as `(select private.is_admin())`, once per
-- statement; PL/pgSQL like private.current_provider_ids().
create or replace function private.is_admin()
returns boolean
language plpgsql stable
security definer
set search_path = ''
as $fn$
begin
    return exists (
        select from public.profile as p
        where p.id = (select auth.uid()) and p.role = 'admin'
    );
end
$fn$;

revoke execute on function private.is_valid_timezone(text) from public;
revoke execute on function private.handle_new_auth_user() from public;
revoke execute on function private.e164(text) from public;
revoke execute on function private.sync_auth_user_contact() from public;
revoke execute on function private.current_provider_ids() from public;
revoke execute on function private.is_provider_member(uuid) from public;
revoke execute on function private.is_provider_owner(uuid) from public;
revoke execute on function private.is_admin() from public;
revoke execute on function private.current_owned_provider_ids() from public;
grant execute on function private.is_valid_timezone(text) to authenticated, service_role;
grant execute on function private.e164(text) to authenticated, service_role;
grant execute on function private.current_provider_ids() to authenticated, service_role;
grant execute on function private.is_provider_member(uuid) to authenticated, service_role;
grant execute on function private.is_provider_owner(uuid) to authenticated, service_role;
grant execute on function private.is_admin() to authenticated, service_role;
grant execute on function private.current_owned_provider_ids() to authenticated, service_role;

drop trigger if exists on_auth_user_created on auth.users;
create trigger on_auth_user_created
after insert on auth.users
for each row execute function private.handle_new_auth_user();

drop trigger if exists on_auth_user_contact_changed on auth.users;
create trigger on_auth_user_contact_changed
after update of email, phone on auth.users
for each row execute function private.sync_auth_user_contact();

drop trigger if exists set_updated_at on public.profile;
create trigger set_updated_at
before update on public.profile
for each row execute function private.set_updated_at();

drop trigger if exists set_updated_at on public.providers;
create trigger set_updated_at
before update on public.providers
for each row execute function private.set_updated_at();
