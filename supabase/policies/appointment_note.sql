-- appointment_note: written by the reservation's practitioner; a private note is read by its
-- author only, the others by the author and the reservation's patient.

alter table public.appointment_note enable row level security;

revoke all on public.appointment_note from anon, authenticated, service_role;
grant select, delete on public.appointment_note to authenticated;
grant insert (
    reservation_id, profile_id, note_type, content, is_private
) on public.appointment_note to authenticated;
grant update (note_type, content, is_private) on public.appointment_note to authenticated;
grant all on public.appointment_note to service_role;

drop policy if exists "Authors can read their notes" on public.appointment_note;
create policy "Authors can read their notes"
on public.appointment_note for select to authenticated
using (profile_id = (select auth.uid()));

drop policy if exists "Patients can read the shared notes of their reservations"
on public.appointment_note;
create policy "Patients can read the shared notes of their reservations"
on public.appointment_note for select to authenticated
using (
    not is_private
    and reservation_id = any(array(select private.current_patient_reservation_ids()))
);

drop policy if exists "Practitioners can write notes on their reservations"
on public.appointment_note;
create policy "Practitioners can write notes on their reservations"
on public.appointment_note for insert to authenticated
with check (
    profile_id = (select auth.uid())
    and private.is_reservation_practitioner(reservation_id)
);

drop policy if exists "Authors can update their notes" on public.appointment_note;
create policy "Authors can update their notes"
on public.appointment_note for update to authenticated
using (profile_id = (select auth.uid()))
with check (profile_id = (select auth.uid()));

drop policy if exists "Authors can delete their notes" on public.appointment_note;
create policy "Authors can delete their notes"
on public.appointment_note for delete to authenticated
using (profile_id = (select auth.uid()));
