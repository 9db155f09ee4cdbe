-- carehub: no-transaction
-- The follow-ups of a ticket, and the index behind healthcare_tickets_origin_ticket_id_fkey,
-- built without blocking writers (the tickets table is large). Partial: most tickets have no
-- origin.
create index concurrently if not exists healthcare_tickets_origin_ticket_id_idx
on public.healthcare_tickets (origin_ticket_id)
where origin_ticket_id is not null;
