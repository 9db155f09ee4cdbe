-- prescriptions: the prescribing doctor writes and reads them; the patient reads theirs; the
-- pharmacy reads one once its ticket is sent (sent_at); parties of its ticket and admins read.
-- Clinical fields freeze when sent (trigger); the order id and Rx number stay writable.

alter table public.prescriptions enable row level security;

revoke all on public.prescriptions from anon, authenticated, service_role;
grant select, delete on public.prescriptions to authenticated;
-- Not id: a client-chosen id would answer 23505 for one that exists (access issue, rule 9).
grant insert (
    doctor_id, pharmacy_id, patient_id, appointment_id, medications, notes, external_order_id,
    rx_number
) on public.prescriptions to authenticated;
grant update (
    doctor_id, pharmacy_id, patient_id, appointment_id, medications, notes, external_order_id,
    rx_number
) on public.prescriptions to authenticated;
grant select, insert, update, delete on public.prescriptions to service_role;

drop policy if exists "Prescription parties can read prescriptions" on public.prescriptions;
create policy "Prescription parties can read prescriptions"
on public.prescriptions for select to authenticated
using (
    doctor_id = (select auth.uid())
    or patient_id = (select auth.uid())
    or (sent_at is not null and pharmacy_id = any(array(select private.current_provider_ids())))
    or (select private.is_admin())
    or exists (
        -- Parties of its ticket; its fulfiller once the ticket was sent (sent_at).
        select from public.healthcare_tickets as t
        where
            t.prescription_id = prescriptions.id
            and (
                t.patient_id = (select auth.uid())
                or t.primary_provider_id = any(array(select private.current_provider_ids()))
                or (
                    t.sent_at is not null
                    and t.secondary_provider_id = any(array(select private.current_provider_ids()))
                )
            )
    )
);

drop policy if exists "Doctors can write prescriptions" on public.prescriptions;
create policy "Doctors can write prescriptions"
on public.prescriptions for insert to authenticated
with check (doctor_id = (select auth.uid()) and (select private.caller_can_prescribe()));

drop policy if exists "Prescribing doctors can update prescriptions" on public.prescriptions;
create policy "Prescribing doctors can update prescriptions"
on public.prescriptions for update to authenticated
using (doctor_id = (select auth.uid()))
with check (doctor_id = (select auth.uid()) and (select private.caller_can_prescribe()));

drop policy if exists "Prescribing doctors can delete unsent prescriptions"
on public.prescriptions;
create policy "Prescribing doctors can delete unsent prescriptions"
on public.prescriptions for delete to authenticated
using (doctor_id = (select auth.uid()) and sent_at is null);
