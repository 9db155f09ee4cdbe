-- fulfillment_analytics: a pharmacy's members read its rows, admins every row (also the
-- network rows, pharmacy_id null); only the system (the worker's rollup) writes them.

alter table public.fulfillment_analytics enable row level security;

revoke all on public.fulfillment_analytics from anon, authenticated;
grant select on public.fulfillment_analytics to authenticated;
grant all on public.fulfillment_analytics to service_role;

drop policy if exists "Pharmacy members and admins can read fulfilment analytics"
on public.fulfillment_analytics;
create policy "Pharmacy members and admins can read fulfilment analytics"
on public.fulfillment_analytics for select to authenticated
using (
    pharmacy_id = any(array(select private.current_provider_ids()))
    or (select private.is_admin())
);
