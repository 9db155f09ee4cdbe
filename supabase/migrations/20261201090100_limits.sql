-- One table of the caps that protect the product from abuse (the access issue's booking caps
-- and ticket caps), so an operator tunes them with an update instead of a migration.

create table private.limits (
    name text primary key,
    value integer not null check (value >= 0),
    description text not null
);

comment on table private.limits is
'Abuse caps read by the booking and ticket rules (private.limit_value). Operators update value.';

insert into private.limits (name, value, description) values
(
    'booking_phone_holds_per_slot', 1,
    'Pending anonymous holds one phone number may have on one slot'
),
(
    'booking_phone_holds_per_practitioner', 3,
    'Pending anonymous holds one phone number may have with one practitioner'
),
(
    'booking_address_holds_total', 10,
    'Pending anonymous holds one client address may have in total'
),
(
    'open_crisis_tickets_per_patient', 1,
    'Open (non-terminal) crisis counselling tickets one patient may have'
),
(
    'open_patient_tickets_per_type', 3,
    'Open (non-terminal) tickets a patient may open themselves, per ticket type'
);

alter table private.limits enable row level security;

revoke all on private.limits from public, anon, authenticated, service_role;

-- From functions-sql/limits.sql
-- ------------------------------------------------------------------------------------------

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
