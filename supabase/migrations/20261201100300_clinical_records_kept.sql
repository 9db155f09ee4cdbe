-- Clinical records are kept (access issue, rule 11): appointment notes are append-only (a
-- correction is a new note with supersedes_id naming the old one, which stays readable to its
-- author), and deleting a practitioner's or a patient's account never deletes reservations or
-- notes. A practitioner's account with reservations or notes cannot be deleted (restrict: it
-- is deactivated instead); a patient's can, and their reservations stay with patient_id null.

alter table public.appointment_note
add column supersedes_id uuid references public.appointment_note (id) on delete restrict;

-- One correction per note (a chain, never a fork); also the foreign key's index.
create unique index appointment_note_supersedes_id_idx
on public.appointment_note (supersedes_id);

comment on column public.appointment_note.supersedes_id is
'The note this one corrects (same reservation and author); notes are never edited.';

-- Deleting a practitioner's profile (or their slots and services) used to cascade to their
-- reservations and notes.
alter table public.reservation
drop constraint reservation_profile_id_fkey,
add constraint reservation_profile_id_fkey foreign key (profile_id)
references public.profile (id) on delete restrict,
drop constraint reservation_slot_id_fkey,
add constraint reservation_slot_id_fkey foreign key (slot_id)
references public.time_slot (id) on delete restrict,
drop constraint reservation_service_id_fkey,
add constraint reservation_service_id_fkey foreign key (service_id)
references public.medical_service (id) on delete restrict;

alter table public.appointment_note
drop constraint appointment_note_reservation_id_fkey,
add constraint appointment_note_reservation_id_fkey foreign key (reservation_id)
references public.reservation (id) on delete restrict,
drop constraint appointment_note_profile_id_fkey,
add constraint appointment_note_profile_id_fkey foreign key (profile_id)
references public.profile (id) on delete restrict;

drop policy if exists "Authors can read their notes" on public.appointment_note;
drop policy if exists "Patients can read the shared notes of their reservations"
on public.appointment_note;
drop policy if exists "Authors can update their notes" on public.appointment_note;
drop policy if exists "Authors can delete their notes" on public.appointment_note;

-- From functions-sql/appointment_notes.sql
-- ------------------------------------------------------------------------------------------

-- Appointment notes are clinical records: append-only (a correction is a new note naming the
-- one it supersedes), and never deleted with an account (the foreign keys restrict).

-- A new note that supersedes another corrects one of its author's own notes on the same
-- reservation, at most once (unique supersedes_id). Raises CH008 otherwise, with one answer
-- whether the superseded note exists or not.
create or replace function private.check_appointment_note_correction()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if new.supersedes_id is not null and not exists (
        select from public.appointment_note as n
        where
            n.id = new.supersedes_id
            and n.reservation_id = new.reservation_id
            and n.profile_id = new.profile_id
    ) then
        raise exception 'note % is not one of your notes on reservation % (CH008)',
            new.supersedes_id, new.reservation_id
            using errcode = 'CH008',
            hint = 'A correction names a note you wrote on the same reservation.';
    end if;
    return new;
end
$fn$;

-- Notes are never changed or deleted, by anyone: a correction is a new note with
-- supersedes_id. (An audited erasure disables this trigger in its own transaction.)
create or replace function private.keep_appointment_notes()
returns trigger
language plpgsql
set search_path = ''
as $fn$
begin
    raise exception 'appointment note % cannot be %; notes are clinical records (CH007)',
        old.id, case when tg_op = 'DELETE' then 'deleted' else 'changed' end
        using errcode = 'CH007',
        hint = 'Write a new note with supersedes_id = the note it corrects.';
end
$fn$;

-- An account whose profile is the practitioner of reservations or the author of notes is
-- never deleted (the foreign keys restrict); this says why and what to do instead.
create or replace function private.keep_practitioner_clinical_records()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if exists (select from public.reservation as r where r.profile_id = old.id)
        or exists (select from public.appointment_note as n where n.profile_id = old.id) then
        raise exception 'profile % is the practitioner of reservations or the author of '
            'appointment notes, which are kept; the account cannot be deleted', old.id
            using errcode = '23503',
            hint = 'Deactivate it instead: remove its provider memberships, ban the auth user '
            || 'and clear its contact details (README, "Closing an account").';
    end if;
    return old;
end
$fn$;

revoke execute on function private.check_appointment_note_correction() from public;
revoke execute on function private.keep_appointment_notes() from public;
revoke execute on function private.keep_practitioner_clinical_records() from public;

drop trigger if exists check_appointment_note_correction on public.appointment_note;
create trigger check_appointment_note_correction
before insert on public.appointment_note
for each row execute function private.check_appointment_note_correction();

drop trigger if exists keep_appointment_notes on public.appointment_note;
create trigger keep_appointment_notes
before update or delete on public.appointment_note
for each row execute function private.keep_appointment_notes();

drop trigger if exists keep_practitioner_clinical_records on public.profile;
create trigger keep_practitioner_clinical_records
before delete on public.profile
for each row execute function private.keep_practitioner_clinical_records();

-- From policies/appointment_note.sql
-- ------------------------------------------------------------------------------------------

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
