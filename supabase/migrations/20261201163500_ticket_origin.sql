-- Tickets that come from tickets: healthcare_tickets.origin_ticket_id (a prescription, referral
-- or diagnostic order from a consultation; a consultation from a referral). A nullable column
-- without a default is a catalog-only change; its foreign key and check are added NOT VALID
-- (no scan under the lock) and validated after the concurrent index build.

alter table public.healthcare_tickets add column origin_ticket_id uuid;

-- An erased origin (private.erase_ticket) leaves its follow-ups, without the link.
alter table public.healthcare_tickets
add constraint healthcare_tickets_origin_ticket_id_fkey
foreign key (origin_ticket_id) references public.healthcare_tickets (id)
on delete set null not valid;

alter table public.healthcare_tickets
add constraint healthcare_tickets_origin_not_itself
check (origin_ticket_id <> id) not valid;

comment on column public.healthcare_tickets.origin_ticket_id is
'The ticket this one came from (a consultation, or a referral); see create_ticket_from.';
