-- prescription_items: readable by whoever reads the prescription; written by its doctor until
-- it is sent (then frozen by trigger, CH007). Each policy looks its prescription up under the
-- prescriptions policies, so "who reads the prescription" is written once.

alter table public.prescription_items enable row level security;

revoke all on public.prescription_items from anon, authenticated, service_role;
grant select, insert, update, delete on public.prescription_items to authenticated;
grant select, insert, update, delete on public.prescription_items to service_role;

drop policy if exists "Prescription readers can read items" on public.prescription_items;
create policy "Prescription readers can read items"
on public.prescription_items for select to authenticated
using (
    exists (
        select from public.prescriptions as rx
        where rx.id = prescription_items.prescription_id
    )
);

drop policy if exists "Prescribing doctors can add items" on public.prescription_items;
create policy "Prescribing doctors can add items"
on public.prescription_items for insert to authenticated
with check (exists (
    select from public.prescriptions as rx
    where rx.id = prescription_items.prescription_id and rx.doctor_id = (select auth.uid())
));

drop policy if exists "Prescribing doctors can update items" on public.prescription_items;
create policy "Prescribing doctors can update items"
on public.prescription_items for update to authenticated
using (exists (
    select from public.prescriptions as rx
    where rx.id = prescription_items.prescription_id and rx.doctor_id = (select auth.uid())
))
with check (exists (
    select from public.prescriptions as rx
    where rx.id = prescription_items.prescription_id and rx.doctor_id = (select auth.uid())
));

drop policy if exists "Prescribing doctors can remove items" on public.prescription_items;
create policy "Prescribing doctors can remove items"
on public.prescription_items for delete to authenticated
using (exists (
    select from public.prescriptions as rx
    where rx.id = prescription_items.prescription_id and rx.doctor_id = (select auth.uid())
));
