-- Indexes behind ticket_types' foreign keys to ticket_statuses, as every foreign key has one
-- (the table holds five rows; the rule keeps the schema lint simple and uniform).
create index ticket_types_initial_status_idx on public.ticket_types (
    ticket_type, initial_status
);
create index ticket_types_claimable_status_idx on public.ticket_types (
    ticket_type, claimable_status
);
create index ticket_types_claimed_status_idx on public.ticket_types (ticket_type, claimed_status);
