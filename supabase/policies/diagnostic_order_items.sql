-- diagnostic_order_items: the tests of a diagnostic order. The order's parties read them; the
-- ordering practice (members of the primary provider) adds, changes and removes them while the
-- order is a draft (the trigger in functions-sql/diagnostic_orders.sql freezes them once sent,
-- CH007). Judged on the ticket's own columns, as the timeline is.

alter table public.diagnostic_order_items enable row level security;

revoke all on public.diagnostic_order_items from anon, authenticated, service_role;
grant select, delete on public.diagnostic_order_items to authenticated;
-- Not id (a chosen id would tell whether it exists), nor the bookkeeping columns.
grant insert (
    ticket_id, test_code, test_name, specimen, instructions, price
) on public.diagnostic_order_items to authenticated;
grant update (
    test_code, test_name, specimen, instructions, price
) on public.diagnostic_order_items to authenticated;
grant select, insert, update, delete on public.diagnostic_order_items to service_role;

drop policy if exists "Ticket parties can read diagnostic tests"
on public.diagnostic_order_items;
create policy "Ticket parties can read diagnostic tests"
on public.diagnostic_order_items for select to authenticated
using (
    exists (
        select from public.healthcare_tickets as t
        where
            t.id = diagnostic_order_items.ticket_id
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

drop policy if exists "Ordering practices can add diagnostic tests"
on public.diagnostic_order_items;
create policy "Ordering practices can add diagnostic tests"
on public.diagnostic_order_items for insert to authenticated
with check (
    exists (
        select from public.healthcare_tickets as t
        where
            t.id = diagnostic_order_items.ticket_id
            and t.ticket_type = 'diagnostic'
            and t.primary_provider_id = any(array(select private.current_provider_ids()))
    )
);

drop policy if exists "Ordering practices can change diagnostic tests"
on public.diagnostic_order_items;
create policy "Ordering practices can change diagnostic tests"
on public.diagnostic_order_items for update to authenticated
using (
    exists (
        select from public.healthcare_tickets as t
        where
            t.id = diagnostic_order_items.ticket_id
            and t.primary_provider_id = any(array(select private.current_provider_ids()))
    )
)
with check (
    exists (
        select from public.healthcare_tickets as t
        where
            t.id = diagnostic_order_items.ticket_id
            and t.primary_provider_id = any(array(select private.current_provider_ids()))
    )
);

drop policy if exists "Ordering practices can remove diagnostic tests"
on public.diagnostic_order_items;
create policy "Ordering practices can remove diagnostic tests"
on public.diagnostic_order_items for delete to authenticated
using (
    exists (
        select from public.healthcare_tickets as t
        where
            t.id = diagnostic_order_items.ticket_id
            and t.primary_provider_id = any(array(select private.current_provider_ids()))
    )
);
