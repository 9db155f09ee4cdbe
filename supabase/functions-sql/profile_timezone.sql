-- profile.timezone may be unset (null, no longer 'UTC'): an unset patient zone means the
-- practitioner's or pharmacy's. Staff keep a zone, since their calendars are generated in it.

-- BEFORE INSERT on profile: a staff profile without a zone gets UTC, as before.
create or replace function private.default_staff_timezone()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    if new.timezone is null and new.role <> 'patient' then
        new.timezone := 'UTC';
    end if;
    return new;
end
$fn$;

revoke execute on function private.default_staff_timezone() from public;

drop trigger if exists default_staff_timezone on public.profile;
create trigger default_staff_timezone
before insert on public.profile
for each row execute function private.default_staff_timezone();
