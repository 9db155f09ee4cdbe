-- Statistics that let the planner see a fulfiller's inbox as it is. A provider receives one
-- ticket type (a pharmacy prescriptions, a centre diagnostics), so secondary_provider_id
-- determines ticket_type; without this the planner multiplies the two selectivities, expects
-- about a third of a pharmacy's rows, and with the RLS filter (judged from the row, estimated
-- at about half) below the 50 the inbox asks for it bitmap-scans and sorts every ticket of the
-- pharmacy, fetching each one's prescription and thread before the LIMIT, instead of reading
-- the (secondary_provider_id, ticket_type, created_at desc) index in order and stopping at 50.
create statistics if not exists public.healthcare_tickets_secondary_provider_type_stats
(dependencies) on secondary_provider_id, ticket_type from public.healthcare_tickets;

-- Build it now rather than at autovacuum's next analyze (reads a sample; blocks no writer).
analyze public.healthcare_tickets;
