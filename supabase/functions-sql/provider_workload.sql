-- Provider workload: how many tickets a provider has in hand, the cap its owner sets
-- (providers.max_active_tickets, enforced by claim_ticket with CH010), and the provider_workload
-- view for admins and the provider's own members.

-- The tickets provider p_provider_id has in hand: those it fulfils at its type's claimed status
-- or 'scheduled' (for counselling: claimed or scheduled), not terminal.
create or replace function private.provider_active_ticket_count(p_provider_id uuid)
returns integer
language sql stable
security definer
set search_path = ''
as $fn$
    select count(*)::integer
    from public.healthcare_tickets as t
    inner join public.ticket_types as tt on t.ticket_type = tt.ticket_type
    inner join public.ticket_statuses as s
        on t.ticket_type = s.ticket_type and t.status = s.status
    where
        t.secondary_provider_id = p_provider_id
        and t.status in (tt.claimed_status, 'scheduled')
        and not s.is_terminal
$fn$;

-- The work of public.set_provider_max_active_tickets, with the privileges it needs (only admins
-- update providers directly).
create or replace function private.set_provider_max_active_tickets(
    p_provider_id uuid, p_max integer
)
returns public.providers
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_provider public.providers;
begin
    if not (private.is_provider_owner(p_provider_id) or private.is_admin()) then
        raise exception 'only an owner of provider % sets its workload limit (CH008)',
            p_provider_id
            using errcode = 'CH008', hint = 'Ask the provider''s owner.';
    end if;
    if p_max < 0 then
        raise exception 'a workload limit is a number of tickets, 0 or more (not %)', p_max
            using errcode = '22023', hint = 'Pass null to remove the limit.';
    end if;
    update public.providers as p
    set max_active_tickets = p_max
    where p.id = p_provider_id
    returning p.* into v_provider;
    return v_provider;
end
$fn$;

-- set_provider_max_active_tickets(p_provider_id, p_max): an owner of the provider (or an admin)
-- sets how many tickets it may have in hand at once (claimed or scheduled; null: no limit).
-- claim_ticket refuses claims past it (CH010). Returns the provider. Raises CH008 for anyone but
-- an owner or admin; 22023 for a negative limit.
create or replace function public.set_provider_max_active_tickets(
    p_provider_id uuid, p_max integer
)
returns public.providers
language sql
security invoker
set search_path = ''
as $fn$
    select * from private.set_provider_max_active_tickets(p_provider_id, p_max)
$fn$;

revoke execute on function private.provider_active_ticket_count(uuid) from public;
revoke execute on function private.set_provider_max_active_tickets(uuid, integer) from public;
revoke execute on function public.set_provider_max_active_tickets(
    uuid, integer
) from public, anon;
grant execute on function private.provider_active_ticket_count(uuid) to authenticated, service_role;
grant execute on function private.set_provider_max_active_tickets(
    uuid, integer
) to authenticated, service_role;
grant execute on function public.set_provider_max_active_tickets(
    uuid, integer
) to authenticated, service_role;

-- Each provider's tickets in hand against its limit: admins see every provider, members their
-- own. Security invoker: the caller's own RLS applies to what it reads.
create or replace view public.provider_workload
with (security_invoker = true)
as
select
    p.id as provider_id,
    p.name,
    p.kind,
    p.max_active_tickets,
    private.provider_active_ticket_count(p.id) as active_tickets
from public.providers as p
where
    (select private.is_admin())
    or p.id = any(array(select private.current_provider_ids()));

revoke all on public.provider_workload from anon, authenticated, service_role;
grant select on public.provider_workload to authenticated, service_role;
