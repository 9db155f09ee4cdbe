-- Abuse caps: the one reader of private.limits (created and seeded by migration
-- 20261201090100_limits), used by the booking and ticket rules.

-- The value of cap p_name. Raises when the cap is unknown, so a typo never means "no limit".
create or replace function private.limit_value(p_name text)
returns integer
language plpgsql stable
security definer
set search_path = ''
as $fn$
declare
    v_value integer;
begin
    select l.value into v_value from private.limits as l where l.name = p_name;
    if v_value is null then
        raise exception 'unknown limit %', p_name
            using errcode = '22023', hint = 'See private.limits for the configured caps.';
    end if;
    return v_value;
end
$fn$;

revoke execute on function private.limit_value(text) from public;
grant execute on function private.limit_value(text) to authenticated, service_role;
