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
