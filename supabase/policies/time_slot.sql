-- time_slot: anyone (anon too) reads bookable future slots, which carry no patient data; a
-- practitioner reads and creates their own, and changes only their capacity directly (status
-- through block_time_slot / unblock_time_slot and the booking functions; never deleted, so
-- bookings keep their slot); admins read all.

alter table public.time_slot enable row level security;

revoke all on public.time_slot from anon, authenticated, service_role;
grant select on public.time_slot to anon;
grant select on public.time_slot to authenticated;
grant insert (
    profile_id, service_id, start_time, end_time, max_reservations
) on public.time_slot to authenticated;
grant update (max_reservations) on public.time_slot to authenticated;
grant all on public.time_slot to service_role;

drop policy if exists "Anyone can read bookable future slots" on public.time_slot;
create policy "Anyone can read bookable future slots"
on public.time_slot for select to anon
using (status = 'available' and start_time > now());

-- One policy per role and action (Supabase advisors): the bookable slots, plus all of one's
-- own slots and, for admins, every slot.
drop policy if exists "Users can read bookable slots and owners or admins all"
on public.time_slot;
create policy "Users can read bookable slots and owners or admins all"
on public.time_slot for select to authenticated
using (
    status = 'available' and start_time > now()
    or profile_id = (select auth.uid())
    or (select private.is_admin())
);

drop policy if exists "Practitioners can add their own slots" on public.time_slot;
create policy "Practitioners can add their own slots"
on public.time_slot for insert to authenticated
with check (profile_id = (select auth.uid()) and (select private.is_practitioner()));

drop policy if exists "Practitioners can update their own slots" on public.time_slot;
create policy "Practitioners can update their own slots"
on public.time_slot for update to authenticated
using (profile_id = (select auth.uid()))
with check (profile_id = (select auth.uid()));
