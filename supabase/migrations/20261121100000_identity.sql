-- Identity: profiles (one per auth.users row), providers and the people who act for them.
-- Also the private schema: security-definer helpers for policies and triggers, never exposed.

create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- Tables ------------------------------------------------------------------------------------

create table public.profile (
    id uuid primary key references auth.users (id) on delete cascade,
    role text not null default 'patient' check (
        role in (
            'patient', 'doctor', 'pharmacist', 'specialist', 'diagnostics', 'counselor', 'admin'
        )
    ),
    full_name text,
    phone text check (phone ~ '^\+[1-9][0-9]{6,14}$'),
    email text,
    timezone text not null default 'UTC',
    sms_opt_in boolean not null default false,
    preferred_contact_method text not null default 'sms' check (
        preferred_contact_method in ('sms', 'whatsapp', 'email', 'none')
    ),
    medical_license varchar(50),
    specialty varchar(100),
    practice_type varchar(50) check (practice_type in ('general', 'specialist', 'clinic')),
    appointment_approval_required boolean not null default true,
    max_appointment_duration integer not null default 60 check (max_appointment_duration > 0),
    buffer_time_minutes integer not null default 15 check (buffer_time_minutes >= 0),
    cancellation_policy text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

comment on table public.profile is
'One row per auth.users row (same id); role is set from raw_app_meta_data by a trigger.';

create table public.providers (
    id uuid primary key default gen_random_uuid(),
    kind text not null check (
        kind in ('doctor', 'pharmacy', 'specialist', 'diagnostics_center', 'counselor', 'clinic')
    ),
    name text not null check (length(btrim(name)) > 0),
    expertise text[] not null default '{}',
    timezone text not null default 'UTC',
    phone text check (phone ~ '^\+[1-9][0-9]{6,14}$'),
    external_ids jsonb not null default '{}',
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

comment on table public.providers is
'Who can be a ticket party: doctor, pharmacy, specialist, diagnostics centre, counsellor, clinic.';

create table public.provider_members (
    provider_id uuid not null references public.providers (id) on delete cascade,
    profile_id uuid not null references public.profile (id) on delete cascade,
    member_role text not null default 'staff' check (member_role in ('owner', 'staff')),
    created_at timestamptz not null default now(),
    primary key (provider_id, profile_id)
);

-- The primary key serves lookups by provider; policies look members up by profile.
create index provider_members_profile_id_idx on public.provider_members (profile_id);
-- Claimers are found among active providers of a kind.
create index providers_kind_active_idx on public.providers (kind) where is_active;

-- Functions and triggers ------------------------------------------------------------------

create or replace function private.set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    new.updated_at := pg_catalog.now();
    return new;
end
$fn$;

revoke execute on function private.set_updated_at() from public;

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
create or replace function private.current_provider_ids()
returns setof uuid
language sql stable
security definer
set search_path = ''
as $fn$
    select m.provider_id
    from public.provider_members as m
    where m.profile_id = (select auth.uid())
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

create or replace function private.is_admin()
returns boolean
language sql stable
security definer
set search_path = ''
as $fn$
    select exists (
        select from public.profile as p
        where p.id = (select auth.uid()) and p.role = 'admin'
    )
$fn$;

revoke execute on function private.is_valid_timezone(text) from public;
revoke execute on function private.handle_new_auth_user() from public;
revoke execute on function private.e164(text) from public;
revoke execute on function private.sync_auth_user_contact() from public;
revoke execute on function private.current_provider_ids() from public;
revoke execute on function private.is_provider_member(uuid) from public;
revoke execute on function private.is_provider_owner(uuid) from public;
revoke execute on function private.is_admin() from public;
grant execute on function private.is_valid_timezone(text) to authenticated, service_role;
grant execute on function private.e164(text) to authenticated, service_role;
grant execute on function private.current_provider_ids() to authenticated, service_role;
grant execute on function private.is_provider_member(uuid) to authenticated, service_role;
grant execute on function private.is_provider_owner(uuid) to authenticated, service_role;
grant execute on function private.is_admin() to authenticated, service_role;

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

alter table public.profile add constraint profile_timezone_check
check (private.is_valid_timezone(timezone));
alter table public.providers add constraint providers_timezone_check
check (private.is_valid_timezone(timezone));

-- Row level security and grants --------------------------------------------------------------

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

drop policy if exists "Users can read their own profile" on public.profile;
create policy "Users can read their own profile"
on public.profile for select to authenticated
using (id = (select auth.uid()));

drop policy if exists "Admins can read every profile" on public.profile;
create policy "Admins can read every profile"
on public.profile for select to authenticated
using ((select private.is_admin()));

drop policy if exists "Users can update their own profile" on public.profile;
create policy "Users can update their own profile"
on public.profile for update to authenticated
using (id = (select auth.uid()))
with check (id = (select auth.uid()));


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

drop policy if exists "Provider owners can add staff" on public.provider_members;
create policy "Provider owners can add staff"
on public.provider_members for insert to authenticated
with check (
    (member_role = 'staff' and private.is_provider_owner(provider_id))
    or (select private.is_admin())
);

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
