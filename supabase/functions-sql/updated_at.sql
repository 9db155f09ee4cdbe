-- Generic trigger: keep updated_at at the time of the last update.

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
