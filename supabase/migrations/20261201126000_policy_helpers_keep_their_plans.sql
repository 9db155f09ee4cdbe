-- The helpers that RLS policies call once per statement become PL/pgSQL: as SQL functions that
-- cannot be inlined (security definer, search_path) their bodies were parsed and planned again
-- by every statement that called them (about 60 us a call; a pharmacy's inbox calls
-- current_provider_ids three times), where PL/pgSQL keeps its plans for the session (about
-- 12 us a call). Same signatures and grants; the policies are unchanged.
-- Every definition below is the current one from functions-sql/identity.sql.

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
