-- healthcare_tickets: parties (patient, members of the primary and secondary providers, admins)
-- read and update their tickets; the fulfiller of a drafted ticket (prescription, referral,
-- diagnostic) sees nothing of it until it was sent (sent_at); open tickets are shown to the
-- providers that may claim them. One permissive policy per action. Policies judge a row from
-- its own columns, so `insert ... returning` works for its creator. Which changes an actor may
-- make is enforced by triggers (functions-sql/tickets_status.sql). Nobody deletes a ticket, not
-- even service_role: erasure is private.erase_ticket's (functions-sql/tickets_erasure.sql).

alter table public.healthcare_tickets enable row level security;

revoke all on public.healthcare_tickets from anon, authenticated, service_role;
grant select on public.healthcare_tickets to authenticated;
-- Not id (a chosen id would tell whether it exists), nor the bookkeeping columns.
-- required_provider_kind is granted so that a client still sending the right kind keeps
-- working; any other kind is refused (CH007).
grant insert (
    ticket_type, status, patient_id, primary_provider_id, secondary_provider_id,
    required_provider_kind, appointment_id, prescription_id, title, description, category,
    urgency, session_mode, scheduled_time, meeting_link, created_by, metadata
) on public.healthcare_tickets to authenticated;
-- The ticket's identity columns are granted so that changing them fails with a domain error
-- (CH007) that says why; bookkeeping columns are not granted at all.
grant update (
    ticket_type, status, patient_id, primary_provider_id, secondary_provider_id,
    required_provider_kind, appointment_id, prescription_id, title, description, category,
    urgency, session_mode, scheduled_time, meeting_link, created_by, metadata
) on public.healthcare_tickets to authenticated;
grant select, insert, update on public.healthcare_tickets to service_role;

drop policy if exists "Ticket parties can read tickets" on public.healthcare_tickets;
drop policy if exists "Eligible claimers can read open tickets" on public.healthcare_tickets;
drop policy if exists "Ticket parties and eligible claimers can read tickets"
on public.healthcare_tickets;
create policy "Ticket parties and eligible claimers can read tickets"
on public.healthcare_tickets for select to authenticated
using (
    patient_id = (select auth.uid())
    or primary_provider_id = any(array(select private.current_provider_ids()))
    or (
        -- The fulfiller is a party once the ticket was sent (see tickets_status.sql).
        sent_at is not null
        and secondary_provider_id = any(array(select private.current_provider_ids()))
    )
    or (select private.is_admin())
    or (
        -- Open tickets, to the providers that may claim them.
        secondary_provider_id is null
        and required_provider_kind = any(array(select private.current_provider_kinds()))
        and private.caller_can_claim(ticket_type, status, required_provider_kind, category)
    )
);

-- Who opens which type, and for which patient, is ticket_openers' (set_ticket_defaults checks
-- this same condition first, then those rules).
drop policy if exists "Requesters and patients can create tickets" on public.healthcare_tickets;
create policy "Requesters and patients can create tickets"
on public.healthcare_tickets for insert to authenticated
with check (
    primary_provider_id = any(array(select private.current_provider_ids()))
    or (patient_id = (select auth.uid()) and primary_provider_id is null)
);

drop policy if exists "Ticket parties can update tickets" on public.healthcare_tickets;
create policy "Ticket parties can update tickets"
on public.healthcare_tickets for update to authenticated
using (
    patient_id = (select auth.uid())
    or primary_provider_id = any(array(select private.current_provider_ids()))
    or (
        -- The fulfiller is a party once the ticket was sent (see tickets_status.sql).
        sent_at is not null
        and secondary_provider_id = any(array(select private.current_provider_ids()))
    )
    or (select private.is_admin())
)
with check (
    patient_id = (select auth.uid())
    or primary_provider_id = any(array(select private.current_provider_ids()))
    or secondary_provider_id = any(array(select private.current_provider_ids()))
    or (select private.is_admin())
);
