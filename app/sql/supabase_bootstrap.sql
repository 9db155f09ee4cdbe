-- Supabase compatibility bootstrap: what hosted Supabase provides and our migrations rely on.
-- Applied by `carehub db migrate` only when auth.users does not exist (never on Supabase).
-- Re-runnable: every statement checks before it creates.

-- Roles ---------------------------------------------------------------------------------------
-- Attributes as on hosted Supabase: the API roles cannot log in; PostgREST logs in as
-- authenticator and switches to one of them per request.
do $bootstrap$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'authenticator') then
        create role authenticator login noinherit;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'supabase_auth_admin') then
        create role supabase_auth_admin login noinherit createrole;
    end if;
    if not exists (
        select from pg_catalog.pg_roles where rolname = 'supabase_realtime_admin'
    ) then
        create role supabase_realtime_admin nologin noinherit;
    end if;
end
$bootstrap$;

grant anon to authenticator;
grant authenticated to authenticator;
grant service_role to authenticator;

-- Schemas -------------------------------------------------------------------------------------
create schema if not exists auth authorization supabase_auth_admin;
create schema if not exists extensions;
create schema if not exists realtime;
create schema if not exists supabase_migrations;

grant usage on schema public to anon, authenticated, service_role;
grant usage on schema auth to anon, authenticated, service_role;
grant usage on schema extensions to anon, authenticated, service_role;
grant usage on schema realtime to anon, authenticated, service_role;

-- Hosted Supabase makes every new function in public executable by the API roles (and
-- PostgreSQL by PUBLIC): migrations must revoke what anon should not call. Tables get no such
-- default since 2026; migrations grant them explicitly.
alter default privileges in schema public
grant execute on functions to anon, authenticated, service_role;
alter default privileges in schema public
grant usage, select on sequences to anon, authenticated, service_role;

-- Extensions Supabase preinstalls in the extensions schema; btree_gist is available to
-- migrations (`create extension btree_gist with schema extensions`) as on Supabase.
create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;

-- auth.users ----------------------------------------------------------------------------------
-- The columns of GoTrue's table that applications read or that tests need to fill in.
create table if not exists auth.users (
    instance_id uuid,
    id uuid primary key,
    aud varchar(255),
    role varchar(255),
    email varchar(255),
    encrypted_password varchar(255),
    email_confirmed_at timestamptz,
    invited_at timestamptz,
    confirmation_token varchar(255),
    confirmation_sent_at timestamptz,
    recovery_token varchar(255),
    recovery_sent_at timestamptz,
    last_sign_in_at timestamptz,
    raw_app_meta_data jsonb,
    raw_user_meta_data jsonb,
    is_super_admin boolean,
    created_at timestamptz,
    updated_at timestamptz,
    phone text unique default null,
    phone_confirmed_at timestamptz,
    confirmed_at timestamptz generated always as (
        least(email_confirmed_at, phone_confirmed_at)
    ) stored,
    banned_until timestamptz,
    deleted_at timestamptz,
    is_sso_user boolean not null default false,
    is_anonymous boolean not null default false
);

create index if not exists users_instance_id_email_idx on auth.users (instance_id, lower(email));
alter table auth.users owner to supabase_auth_admin;

-- auth.uid(), auth.role(), auth.email(), auth.jwt(): read the request's JWT claims the way
-- PostgREST publishes them (request.jwt.claims), falling back to the legacy per-claim settings.
create or replace function auth.uid()
returns uuid
language sql stable
as $fn$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$fn$;

create or replace function auth.role()
returns text
language sql stable
as $fn$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$fn$;

create or replace function auth.email()
returns text
language sql stable
as $fn$
    select coalesce(
        nullif(current_setting('request.jwt.claim.email', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$fn$;

create or replace function auth.jwt()
returns jsonb
language sql stable
as $fn$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$fn$;

alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
to anon, authenticated, service_role;

-- Realtime ------------------------------------------------------------------------------------
-- Realtime Authorization: a client joining a private channel is authorised by the RLS
-- policies on realtime.messages, evaluated with realtime.topic() set to the channel name.
create table if not exists realtime.messages (
    id uuid not null default gen_random_uuid(),
    topic text not null,
    extension text not null,
    payload jsonb,
    event text,
    private boolean default false,
    updated_at timestamp without time zone not null default now(),
    inserted_at timestamp without time zone not null default now(),
    primary key (id, inserted_at)
);

alter table realtime.messages enable row level security;
alter table realtime.messages owner to supabase_realtime_admin;
grant select, insert, update on realtime.messages to anon, authenticated, service_role;

create or replace function realtime.topic()
returns text
language sql stable
as $fn$
    select nullif(current_setting('realtime.topic', true), '')::text
$fn$;

grant execute on function realtime.topic() to anon, authenticated, service_role;

do $bootstrap$
begin
    if not exists (select from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
        create publication supabase_realtime;
    end if;
end
$bootstrap$;

-- Migration history, as the Supabase CLI keeps it --------------------------------------------
create table if not exists supabase_migrations.schema_migrations (
    version text primary key,
    statements text[],
    name text
);
