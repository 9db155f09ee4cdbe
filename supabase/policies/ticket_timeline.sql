-- ticket_timeline: written by triggers only, append-only for everyone (service included);
-- a ticket's parties read its timeline. The party test is spelled out on the ticket's columns
-- (the fulfiller from sent_at, see private.fulfiller_is_party) so that it costs one primary-key
-- lookup per row and the caller's providers are worked out once per statement.

alter table public.ticket_timeline enable row level security;

revoke all on public.ticket_timeline from anon, authenticated, service_role;
grant select on public.ticket_timeline to authenticated, service_role;

drop policy if exists "Ticket parties can read the timeline" on public.ticket_timeline;
create policy "Ticket parties can read the timeline"
on public.ticket_timeline for select to authenticated
using (
    exists (
        select from public.healthcare_tickets as t
        where
            t.id = ticket_timeline.ticket_id
            and (
                t.patient_id = (select auth.uid())
                or t.primary_provider_id = any(array(select private.current_provider_ids()))
                or (
                    t.sent_at is not null
                    and t.secondary_provider_id = any(array(select private.current_provider_ids()))
                )
                or (select private.is_admin())
            )
    )
);
