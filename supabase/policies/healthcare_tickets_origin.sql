-- healthcare_tickets.origin_ticket_id for API callers (after policies/healthcare_tickets.sql,
-- whose `revoke all` comes first): inserting it makes a follow-up ticket, held to the origin
-- rules (functions-sql/tickets_origin.sql); updating it is granted only so that the attempt
-- fails with the domain error that says why (CH007), as for the ticket's other identity columns.
-- Kept apart while that file is being tuned; it belongs in its two grant lists.

grant insert (origin_ticket_id) on public.healthcare_tickets to authenticated;
grant update (origin_ticket_id) on public.healthcare_tickets to authenticated;
