-- Reservation messages: confirmed, cancelled, rejected, expired, and the reminders 24 h and 2 h
-- before time_slot.start_time, queued by triggers; a cancelled or moved reservation's pending
-- reminders are cancelled (a moved one gets reminders for its new time, the appointment time
-- being part of their dedupe key). reservation.reminder_*_{scheduled,sent} follow the outbox.
-- move_time_slot lets a practitioner reschedule a slot.

-- Set reservation p_reservation_id's reminder flags from its deliveries for its current time.
create or replace function private.sync_reservation_reminder_flags(p_reservation_id uuid)
returns void
language sql
security definer
set search_path = ''
as $fn$
    with truth as (
        select
            r.id,
            pg_catalog.bool_or(d.event = 'reservation_reminder_24h'
                and d.status in ('queued', 'scheduled', 'sending')) as s24,
            pg_catalog.bool_or(d.event = 'reservation_reminder_24h'
                and d.status in ('sent', 'delivered', 'read')) as t24,
            pg_catalog.bool_or(d.event = 'reservation_reminder_2h'
                and d.status in ('queued', 'scheduled', 'sending')) as s2,
            pg_catalog.bool_or(d.event = 'reservation_reminder_2h'
                and d.status in ('sent', 'delivered', 'read')) as t2
        from public.reservation as r
        inner join public.time_slot as s on r.slot_id = s.id
        left join public.notification_deliveries as d
            on d.reservation_id = r.id and d.appointment_time = s.start_time
        where r.id = p_reservation_id
        group by r.id
    )
    update public.reservation as r
    set
        reminder_24h_scheduled = coalesce(truth.s24, false),
        reminder_24h_sent = coalesce(truth.t24, false),
        reminder_2h_scheduled = coalesce(truth.s2, false),
        reminder_2h_sent = coalesce(truth.t2, false)
    from truth
    where
        r.id = truth.id
        and (r.reminder_24h_scheduled, r.reminder_24h_sent, r.reminder_2h_scheduled,
            r.reminder_2h_sent)
        is distinct from (coalesce(truth.s24, false), coalesce(truth.t24, false),
            coalesce(truth.s2, false), coalesce(truth.t2, false))
$fn$;

-- Cancel reservation p_reservation_id's reminders not yet sent (all, or those for another
-- appointment time than p_keep_time), with reason p_reason.
create or replace function private.cancel_reservation_reminders(
    p_reservation_id uuid, p_keep_time timestamptz, p_reason text
)
returns void
language sql
security definer
set search_path = ''
as $fn$
    update public.notification_deliveries as d
    set status = 'cancelled', suppressed_reason = p_reason, updated_at = pg_catalog.now()
    where
        d.reservation_id = p_reservation_id
        and d.event in ('reservation_reminder_24h', 'reservation_reminder_2h')
        and d.status in ('queued', 'scheduled')
        and d.appointment_time is distinct from p_keep_time
$fn$;

-- Queue the reminders of reservation p_reservation_id for the appointment at p_start (none
-- whose moment has already passed). The 24 h reminder goes at the same wall-clock time the day
-- before in the patient's zone (else the practitioner's): across a daylight-saving change that
-- is 23 or 25 hours, never an hour off on the patient's clock.
create or replace function private.schedule_reservation_reminders(
    p_reservation_id uuid, p_start timestamptz
)
returns void
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_zone text;
    v_day_before timestamptz;
begin
    select coalesce(pp.timezone, pr.timezone, 'UTC') into v_zone
    from public.reservation as r
    inner join public.profile as pr on r.profile_id = pr.id
    left join public.profile as pp on r.patient_id = pp.id
    where r.id = p_reservation_id;
    v_day_before := ((p_start at time zone v_zone) - interval '1 day') at time zone v_zone;
    if v_day_before > pg_catalog.now() then
        perform private.queue_notifications(
            'reservation_reminder_24h', null, p_reservation_id, null, p_start, v_day_before
        );
    end if;
    if p_start - interval '2 hours' > pg_catalog.now() then
        perform private.queue_notifications(
            'reservation_reminder_2h', null, p_reservation_id, null, p_start,
            p_start - interval '2 hours'
        );
    end if;
end
$fn$;

-- AFTER INSERT OR UPDATE OF status on reservation: confirmed -> the confirmation and its
-- reminders; cancelled -> its reminders cancelled and the cancellation message; completed or
-- no-show -> pending reminders cancelled.
create or replace function private.queue_reservation_notifications()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_start timestamptz;
begin
    select s.start_time into v_start from public.time_slot as s where s.id = new.slot_id;
    if tg_op = 'INSERT' then
        if new.status = 'confirmed' then
            perform private.queue_notifications(
                'reservation_confirmed', null, new.id, null, v_start, null
            );
            perform private.schedule_reservation_reminders(new.id, v_start);
        end if;
    elsif new.status is distinct from old.status then
        perform private.cancel_reservation_reminders(new.id, null, 'reservation_' || new.status);
        if new.status = 'cancelled' then
            perform private.queue_notifications(
                'reservation_cancelled', null, new.id, null, v_start, null
            );
        end if;
    end if;
    perform private.sync_reservation_reminder_flags(new.id);
    return null;
end
$fn$;

-- AFTER UPDATE OF start_time on time_slot: every confirmed reservation of the slot gets its
-- reminders for the new time; those for the old time are cancelled.
create or replace function private.reschedule_slot_reminders()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_reservation_id uuid;
begin
    for v_reservation_id in
        select r.id from public.reservation as r
        where r.slot_id = new.id and r.status = 'confirmed'
        order by r.id
    loop
        perform private.cancel_reservation_reminders(
            v_reservation_id, new.start_time, 'rescheduled'
        );
        perform private.schedule_reservation_reminders(v_reservation_id, new.start_time);
        perform private.sync_reservation_reminder_flags(v_reservation_id);
    end loop;
    return null;
end
$fn$;

-- AFTER UPDATE OF status on reservation_request: a rejected or expired request tells its
-- patient (an anonymous one on the phone they booked with) that the hold ended.
create or replace function private.queue_request_notifications()
returns trigger
language plpgsql
security definer
set search_path = ''
as $fn$
begin
    if new.status in ('rejected', 'expired') and new.status is distinct from old.status then
        perform private.queue_notifications(
            case new.status
                when 'rejected' then 'reservation_rejected'
                else 'reservation_request_expired'
            end,
            null, null, new.id, new.requested_time, null
        );
    end if;
    return null;
end
$fn$;

-- Move slot p_slot_id to start at p_start_time, keeping its length. Only its practitioner (or
-- the system) moves it; a blocked or started slot, or a time in the past, raises CH005; an
-- overlap with another slot of the practitioner raises 23P01 (time_slot_no_overlap). Its
-- reservations' reminders follow (trigger reschedule_slot_reminders).
create or replace function private.move_time_slot(p_slot_id uuid, p_start_time timestamptz)
returns public.time_slot
language plpgsql
security definer
set search_path = ''
as $fn$
declare
    v_slot public.time_slot;
begin
    select s.* into v_slot from public.time_slot as s where s.id = p_slot_id for update;
    if v_slot.id is null or (
        private.is_api_request() and v_slot.profile_id is distinct from (select auth.uid())
    ) then
        raise exception 'time slot % is not one you can move (CH008)', p_slot_id
            using errcode = 'CH008', hint = 'Only the slot''s practitioner moves it; check the id.';
    end if;
    if v_slot.status = 'blocked' or v_slot.start_time <= pg_catalog.now() then
        raise exception 'time slot % is blocked or has started; it cannot be moved (CH005)',
            p_slot_id
            using errcode = 'CH005', hint = 'Move a future slot that is not blocked.';
    end if;
    if p_start_time is null or p_start_time <= pg_catalog.now() then
        raise exception 'time slot % cannot move to % (CH005)', p_slot_id, p_start_time
            using errcode = 'CH005', hint = 'Choose a time in the future.';
    end if;
    update public.time_slot as s
    set start_time = p_start_time, end_time = p_start_time + (v_slot.end_time - v_slot.start_time)
    where s.id = p_slot_id
    returning s.* into v_slot;
    return v_slot;
end
$fn$;

create or replace function public.move_time_slot(p_slot_id uuid, p_start_time timestamptz)
returns public.time_slot
language sql
set search_path = ''
as $fn$
    select private.move_time_slot(p_slot_id, p_start_time)
$fn$;

revoke execute on function private.sync_reservation_reminder_flags(uuid) from public;
revoke execute on function private.cancel_reservation_reminders(uuid, timestamptz, text)
from public;
revoke execute on function private.schedule_reservation_reminders(uuid, timestamptz) from public;
revoke execute on function private.queue_reservation_notifications() from public;
revoke execute on function private.reschedule_slot_reminders() from public;
revoke execute on function private.queue_request_notifications() from public;
revoke execute on function private.move_time_slot(uuid, timestamptz) from public;
revoke execute on function public.move_time_slot(uuid, timestamptz) from public;
grant execute on function private.move_time_slot(uuid, timestamptz) to authenticated, service_role;
grant execute on function public.move_time_slot(uuid, timestamptz) to authenticated, service_role;

drop trigger if exists queue_reservation_notifications on public.reservation;
create trigger queue_reservation_notifications
after insert or update of status on public.reservation
for each row execute function private.queue_reservation_notifications();

drop trigger if exists reschedule_slot_reminders on public.time_slot;
create trigger reschedule_slot_reminders
after update of start_time on public.time_slot
for each row when (old.start_time is distinct from new.start_time)
execute function private.reschedule_slot_reminders();

drop trigger if exists queue_request_notifications on public.reservation_request;
create trigger queue_request_notifications
after update of status on public.reservation_request
for each row execute function private.queue_request_notifications();
