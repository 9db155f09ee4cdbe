-- appointment_note: written by the reservation's practitioner, append-only (a correction is a
-- new note with supersedes_id; see functions-sql/appointment_notes.sql); a private note is read
-- by its author only, the others by the author and the reservation's patient. Nobody updates
-- or deletes notes, not even service_role.

alter table public.appointment_note enable row level security;

revoke all on public.appointment_note from anon, authenticated, service_role;
grant select on public.appointment_note to authenticated;
grant insert (
    reservation_id, profile_id, note_type, content, is_private, supersedes_id
) on public.appointment_note to authenticated;
grant select, insert on public.appointment_note to service_role;

drop policy if exists "Authors and patients of shared notes can read notes"
on public.appointment_note;
create policy "Authors and patients of shared notes can read notes"
on public.appointment_note for select to authenticated
using (
    profile_id = (select auth.uid())
    or (
        not is_private
        and reservation_id = any(array(select private.current_patient_reservation_ids()))
    )
);

drop policy if exists "Practitioners can write notes on their reservations"
on public.appointment_note;
create policy "Practitioners can write notes on their reservations"
on public.appointment_note for insert to authenticated
with check (
    profile_id = (select auth.uid())
    and private.is_reservation_practitioner(reservation_id)
);
