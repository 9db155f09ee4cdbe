-- ticket_attachments: the files of a ticket in Storage, listed for frontends; written only by
-- register_ticket_attachment (as its uploader) and read by the ticket's parties, judged on the
-- ticket's own columns as the timeline is. Nobody updates or deletes them: clinical records
-- are kept.

alter table public.ticket_attachments enable row level security;

revoke all on public.ticket_attachments from anon, authenticated, service_role;
grant select on public.ticket_attachments to authenticated, service_role;

drop policy if exists "Ticket parties can read attachments" on public.ticket_attachments;
create policy "Ticket parties can read attachments"
on public.ticket_attachments for select to authenticated
using (
    exists (
        select from public.healthcare_tickets as t
        where
            t.id = ticket_attachments.ticket_id
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
