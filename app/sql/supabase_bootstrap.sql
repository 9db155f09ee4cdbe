-- Supabase compatibility bootstrap: what hosted Supabase provides and our migrations rely on.
-- Applied by `carehub db migrate` only when auth.users does not exist (never on Supabase).
-- Re-runnable: every statement checks before it creates. Versioned (the comment on schema auth
-- at the end): `carehub db migrate` applies it again to a database an older version bootstrapped,
-- which then gains what that version lacked (version 2: the storage schema, realtime.send and
-- realtime.broadcast_changes).

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
    if not exists (
        select from pg_catalog.pg_roles where rolname = 'supabase_storage_admin'
    ) then
        create role supabase_storage_admin nologin noinherit createrole;
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

-- Realtime Broadcast from the database, as Supabase defines it: realtime.send inserts one
-- broadcast row (its failures only raise a WARNING, as on Supabase: a broadcast never undoes the
-- change that sent it); realtime.broadcast_changes sends a whole row change (mind PHI).
create or replace function realtime.send(
    payload jsonb, event text, topic text, private boolean default true
)
returns void
language plpgsql
as $fn$
begin
    begin
        -- Set the topic configuration
        execute pg_catalog.format('set local realtime.topic to %L', topic);
        -- Attempt to insert the message
        insert into realtime.messages (payload, event, topic, private, extension)
        values (payload, event, topic, private, 'broadcast');
    exception
        when others then
            -- Capture and notify the error
            raise warning 'ErrorSendingBroadcastMessage: %', sqlerrm;
    end;
end
$fn$;

create or replace function realtime.broadcast_changes(
    topic_name text,
    event_name text,
    operation text,
    table_name text,
    table_schema text,
    new record,
    old record,
    level text default 'ROW'
)
returns void
language plpgsql
as $fn$
declare
    -- Declare a variable to hold the JSONB representation of the row
    row_data jsonb := '{}'::jsonb;
begin
    if level = 'STATEMENT' then
        raise exception 'function can only be triggered for each row, not for each statement';
    end if;
    -- Check the operation type and handle accordingly
    if operation = 'INSERT' or operation = 'UPDATE' or operation = 'DELETE' then
        row_data := pg_catalog.jsonb_build_object(
            'old_record', old, 'record', new, 'operation', operation, 'table', table_name,
            'schema', table_schema
        );
        perform realtime.send(row_data, event_name, topic_name);
    else
        raise exception 'Unexpected operation type: %', operation;
    end if;
exception
    when others then
        raise exception 'Failed to process the row: %', sqlerrm;
end
$fn$;

grant execute on function realtime.send(jsonb, text, text, boolean)
to authenticated, service_role;
grant execute on function realtime.broadcast_changes(
    text, text, text, text, text, record, record, text
) to authenticated, service_role;

-- Storage -------------------------------------------------------------------------------------
-- The tables and path helpers of Supabase Storage that policies and applications use. The
-- Storage API writes storage.objects as the signed-in user (RLS decides) and keeps the file's
-- size and MIME type in metadata (size, mimetype).
create schema if not exists storage authorization supabase_storage_admin;
grant usage on schema storage to anon, authenticated, service_role;

create table if not exists storage.buckets (
    id text primary key,
    name text not null,
    owner uuid,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    public boolean default false,
    avif_autodetection boolean default false,
    file_size_limit bigint,
    allowed_mime_types text[],
    owner_id text
);

create unique index if not exists bname on storage.buckets (name);

create table if not exists storage.objects (
    id uuid primary key default gen_random_uuid(),
    bucket_id text references storage.buckets (id),
    name text,
    owner uuid,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    last_accessed_at timestamptz default now(),
    metadata jsonb,
    path_tokens text[] generated always as (pg_catalog.string_to_array(name, '/')) stored,
    version text,
    owner_id text,
    user_metadata jsonb
);

create unique index if not exists bucketid_objname on storage.objects (bucket_id, name);
create index if not exists name_prefix_search on storage.objects (name text_pattern_ops);

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
alter table storage.buckets owner to supabase_storage_admin;
alter table storage.objects owner to supabase_storage_admin;
grant all on storage.buckets to anon, authenticated, service_role;
grant all on storage.objects to anon, authenticated, service_role;

create or replace function storage.foldername(name text)
returns text[]
language plpgsql immutable
as $fn$
declare
    _parts text[];
begin
    select pg_catalog.string_to_array(name, '/') into _parts;
    return _parts[1:pg_catalog.array_length(_parts, 1) - 1];
end
$fn$;

create or replace function storage.filename(name text)
returns text
language plpgsql immutable
as $fn$
declare
    _parts text[];
begin
    select pg_catalog.string_to_array(name, '/') into _parts;
    return _parts[pg_catalog.array_length(_parts, 1)];
end
$fn$;

create or replace function storage.extension(name text)
returns text
language plpgsql immutable
as $fn$
declare
    _parts text[];
    _filename text;
begin
    select pg_catalog.string_to_array(name, '/') into _parts;
    select _parts[pg_catalog.array_length(_parts, 1)] into _filename;
    return pg_catalog.reverse(pg_catalog.split_part(pg_catalog.reverse(_filename), '.', 1));
end
$fn$;

alter function storage.foldername(text) owner to supabase_storage_admin;
alter function storage.filename(text) owner to supabase_storage_admin;
alter function storage.extension(text) owner to supabase_storage_admin;
grant execute on function storage.foldername(text), storage.filename(text), storage.extension(text)
to anon, authenticated, service_role;

-- Migration history, as the Supabase CLI keeps it --------------------------------------------
create table if not exists supabase_migrations.schema_migrations (
    version text primary key,
    statements text[],
    name text
);

-- The version of this bootstrap, read by `carehub db migrate` (app/migrate.py): a database
-- bootstrapped by an older version gets this file applied again. Last, so a failed run leaves
-- the old version recorded.
comment on schema auth is 'carehub Supabase compatibility bootstrap, version 2';
