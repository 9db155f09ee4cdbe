-- Provider workload: a provider's owner caps how many tickets it has in hand
-- (providers.max_active_tickets, set_provider_max_active_tickets); claim_ticket refuses claims
-- past it (CH010); provider_workload shows it to admins and the provider's members.

-- Null: no limit.
alter table public.providers add column max_active_tickets integer
check (max_active_tickets >= 0);

-- From functions-sql/provider_workload.sql
-- ------------------------------------------------------------------------------------------

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

-- From functions-sql/tickets_claiming.sql
-- ------------------------------------------------------------------------------------------

-- Claiming: a provider takes an open ticket (no fulfiller yet, at its type's claimable status).
-- Exactly one of any number of concurrent claims wins, and a provider's workload limit
-- (providers.max_active_tickets) holds under concurrent claims of different tickets.

-- The work of public.claim_ticket, with the privileges it needs (it locks and updates a ticket
-- the caller may not yet read). Answers only what the caller may know: a ticket they could not
-- see as open is refused with one generic CH008, whatever its status or whether it exists; a
-- provider that could have claimed the open ticket and lost the race gets CH003.
create or replace function private.claim_ticket(p_ticket_id uuid, p_provider_id uuid)
returns public.healthcare_tickets
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket public.healthcare_tickets;
    v_type public.ticket_types;
    v_eligible boolean;
    v_limit integer;
    v_active integer;
begin
    if (select auth.uid()) is null then
        raise exception 'sign in to claim tickets'
            using errcode = '42501', hint = 'Call claim_ticket as a signed-in provider member.';
    end if;
    if not private.is_provider_member(p_provider_id) then
        raise exception 'you do not act for provider % (CH008)', p_provider_id
            using errcode = 'CH008', hint = 'Claim for a provider you are a member of.';
    end if;
    -- The row lock serialises concurrent claims: each waits for the one before it and then
    -- sees the ticket as that claim left it.
    select t.* into v_ticket from public.healthcare_tickets as t
    where t.id = p_ticket_id
    for update;
    select tt.* into v_type from public.ticket_types as tt
    where tt.ticket_type = v_ticket.ticket_type;
    -- Whether this provider is one the open ticket was shown to (kind, expertise, active).
    v_eligible := v_ticket.id is not null
        and v_type.claimable_status is not null
        and private.provider_can_claim(
            p_provider_id, v_ticket.required_provider_kind, v_ticket.category
        );
    if v_eligible and v_ticket.secondary_provider_id is null
        and v_ticket.status = v_type.claimable_status then
        -- The workload limit. Locking the provider serialises its claims of different tickets:
        -- each counts after the one before it committed (a new snapshot per statement).
        select p.max_active_tickets into v_limit from public.providers as p
        where p.id = p_provider_id
        for no key update;
        if v_limit is not null then
            v_active := private.provider_active_ticket_count(p_provider_id);
            if v_active >= v_limit then
                raise exception 'provider % has % active tickets (claimed or scheduled) and a '
                    'limit of %; it cannot claim more now (CH010)', p_provider_id, v_active, v_limit
                    using errcode = 'CH010',
                    hint = 'Complete or close a ticket first, or ask an owner to raise the limit '
                    || 'with set_provider_max_active_tickets.';
            end if;
        end if;
        update public.healthcare_tickets as t
        set
            secondary_provider_id = p_provider_id,
            status = v_type.claimed_status,
            claimed_at = pg_catalog.now()
        where t.id = p_ticket_id
        returning t.* into v_ticket;
        return v_ticket;
    end if;
    if v_eligible and v_ticket.claimed_at is not null then
        raise exception 'ticket % has already been claimed (CH003)', p_ticket_id
            using errcode = 'CH003', hint = 'Pick another open ticket.';
    end if;
    raise exception 'ticket % is not open for provider % to claim (CH008)',
        p_ticket_id, p_provider_id
        using errcode = 'CH008',
        hint = 'Claim open tickets that are listed for you: your kind of provider and expertise.';
end
$fn$;

-- claim_ticket(p_ticket_id, p_provider_id): the caller, acting for provider p_provider_id,
-- takes open ticket p_ticket_id. Returns the claimed ticket (secondary_provider_id set, status
-- at the type's claimed status, claimed_at set).
-- Raises 42501 when no user is signed in; CH008 when the caller does not act for the provider,
-- or the ticket is not one that provider could see open (unknown, not open for claiming, another
-- kind or expertise); CH003 when that provider could have claimed it but another claim won;
-- CH010 when the provider already has its max_active_tickets in hand.
create or replace function public.claim_ticket(p_ticket_id uuid, p_provider_id uuid)
returns public.healthcare_tickets
language sql
security invoker
set search_path = ''
as $fn$
    select * from private.claim_ticket(p_ticket_id, p_provider_id)
$fn$;

revoke execute on function private.claim_ticket(uuid, uuid) from public;
grant execute on function private.claim_ticket(uuid, uuid) to authenticated, service_role;
revoke execute on function public.claim_ticket(uuid, uuid) from public, anon;
grant execute on function public.claim_ticket(uuid, uuid) to authenticated, service_role;
