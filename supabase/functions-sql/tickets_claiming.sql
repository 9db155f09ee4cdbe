-- Claiming: a provider takes an open ticket (no fulfiller yet, at its type's claimable status).
-- Exactly one of any number of concurrent claims wins.

-- claim_ticket(p_ticket_id, p_provider_id): the caller, acting for provider p_provider_id,
-- takes open ticket p_ticket_id. Returns the claimed ticket (secondary_provider_id set, status
-- at the type's claimed status, claimed_at set).
-- Raises 42501 when no user is signed in; CH008 when the caller does not act for the provider,
-- or the ticket is unknown or not one that provider may take (kind, expertise); CH003 when the
-- ticket has been claimed already or is no longer open.
create or replace function public.claim_ticket(p_ticket_id uuid, p_provider_id uuid)
returns public.healthcare_tickets
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_ticket public.healthcare_tickets;
    v_type public.ticket_types;
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
    if not found or not private.provider_can_claim(
        p_provider_id, v_ticket.required_provider_kind, v_ticket.category
    ) then
        raise exception 'ticket % is not one provider % may claim (CH008)',
            p_ticket_id, p_provider_id
            using errcode = 'CH008',
            hint = 'Claim open tickets needing your kind of provider and expertise.';
    end if;
    select * into v_type from public.ticket_types where ticket_type = v_ticket.ticket_type;
    if v_ticket.secondary_provider_id is not null then
        raise exception 'ticket % has already been claimed (CH003)', p_ticket_id
            using errcode = 'CH003', hint = 'Pick another open ticket.';
    end if;
    if v_type.claimable_status is distinct from v_ticket.status then
        raise exception 'ticket % is ''%'' and no longer open for claiming (CH003)',
            p_ticket_id, v_ticket.status
            using errcode = 'CH003', hint = 'Pick another open ticket.';
    end if;
    update public.healthcare_tickets as t
    set
        secondary_provider_id = p_provider_id,
        status = v_type.claimed_status,
        claimed_at = pg_catalog.now()
    where t.id = p_ticket_id
    returning t.* into v_ticket;
    return v_ticket;
end
$fn$;

revoke execute on function public.claim_ticket(uuid, uuid) from public, anon;
grant execute on function public.claim_ticket(uuid, uuid) to authenticated, service_role;
