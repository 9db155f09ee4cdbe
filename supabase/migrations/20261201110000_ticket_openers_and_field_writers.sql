-- Who may open which ticket type (ticket_openers) and which party writes which ticket column
-- (ticket_field_writers), as data beside the state machines; the audit table of the one
-- procedure that erases tickets (private.ticket_erasures). The rules that read them are in the
-- next migration.

create table public.ticket_openers (
    -- A surrogate key: a patient's row has no provider kind, so the natural key below has a null.
    id integer primary key generated always as identity,
    ticket_type text not null references public.ticket_types (ticket_type) on delete cascade,
    -- 'patient': the ticket's own patient, opening it for themselves (provider_kind is null).
    -- Any other value: the profile role of a member of the requesting provider, which must be
    -- of provider_kind.
    opener_role text not null check (
        opener_role in (
            'patient', 'doctor', 'pharmacist', 'specialist', 'diagnostics', 'counselor', 'admin'
        )
    ),
    provider_kind text check (
        provider_kind in (
            'doctor', 'pharmacy', 'specialist', 'diagnostics_center', 'counselor', 'clinic'
        )
    ),
    -- Also the index behind the ticket_type foreign key.
    constraint ticket_openers_key unique nulls not distinct (
        ticket_type, opener_role, provider_kind
    ),
    constraint ticket_openers_patient_opens_for_themselves check (
        (opener_role = 'patient') = (provider_kind is null)
    )
);

comment on table public.ticket_openers is
'Who may open each ticket type: the patient for themselves, or a member with a profile role of '
'a provider of a kind. A provider also needs a care relationship with the patient.';

insert into public.ticket_openers (ticket_type, opener_role, provider_kind)
values
('consultation', 'patient', null),
('counseling', 'patient', null),
('prescription', 'doctor', 'doctor'),
('prescription', 'doctor', 'clinic'),
('referral', 'doctor', 'doctor'),
('referral', 'doctor', 'clinic'),
('diagnostic', 'doctor', 'doctor'),
('diagnostic', 'doctor', 'clinic'),
('diagnostic', 'specialist', 'specialist');

create table public.ticket_field_writers (
    ticket_type text not null references public.ticket_types (ticket_type) on delete cascade,
    column_name text not null check (
        column_name in (
            'title', 'description', 'urgency', 'category', 'metadata', 'session_mode',
            'scheduled_time', 'meeting_link'
        )
    ),
    actor text not null check (actor in ('patient', 'primary', 'secondary', 'admin')),
    primary key (ticket_type, column_name, actor)
);

comment on table public.ticket_field_writers is
'Which party may change which column of a ticket of each type (other columns follow the state '
'machine or are the system''s). Nobody but the system changes a ticket at a terminal status.';

-- The requester (the primary provider; the patient for the types a patient opens) owns what
-- the ticket asks for; the fulfiller owns when and how it happens, for the types it schedules.
insert into public.ticket_field_writers (ticket_type, column_name, actor)
select
    o.ticket_type,
    c.column_name,
    case
        when o.ticket_type in ('consultation', 'counseling') then 'patient' else 'primary'
    end as actor
from public.ticket_types as o
cross join (
    values ('title'), ('description'), ('urgency'), ('category'), ('metadata')
) as c (column_name)
union all
select
    o.ticket_type,
    c.column_name,
    'secondary' as actor
from public.ticket_types as o
cross join (values ('scheduled_time'), ('session_mode'), ('meeting_link')) as c (column_name)
where o.ticket_type <> 'prescription';

create table private.ticket_erasures (
    id uuid primary key default gen_random_uuid(),
    -- No foreign key: the ticket is gone; this row is what remains of it.
    ticket_id uuid not null,
    ticket_type text not null,
    patient_id uuid,
    reason text not null check (length(btrim(reason)) > 0),
    requested_by text not null check (length(btrim(requested_by)) > 0),
    erased_by text not null,
    erased_at timestamptz not null default now(),
    timeline_rows integer not null,
    messages integer not null
);

comment on table private.ticket_erasures is
'Audit of private.erase_ticket: who erased which ticket, why and on whose request.';

alter table private.ticket_erasures enable row level security;
revoke all on private.ticket_erasures from public, anon, authenticated, service_role;

-- From policies/ticket_openers.sql
-- ------------------------------------------------------------------------------------------

alter table public.ticket_openers enable row level security;

revoke all on public.ticket_openers from anon, authenticated, service_role;
grant select on public.ticket_openers to authenticated, service_role;

drop policy if exists "Signed-in users can read who opens tickets" on public.ticket_openers;
create policy "Signed-in users can read who opens tickets"
on public.ticket_openers for select to authenticated
using (true);

-- From policies/ticket_field_writers.sql
-- ------------------------------------------------------------------------------------------

alter table public.ticket_field_writers enable row level security;

revoke all on public.ticket_field_writers from anon, authenticated, service_role;
grant select on public.ticket_field_writers to authenticated, service_role;

drop policy if exists "Signed-in users can read who writes ticket fields"
on public.ticket_field_writers;
create policy "Signed-in users can read who writes ticket fields"
on public.ticket_field_writers for select to authenticated
using (true);
