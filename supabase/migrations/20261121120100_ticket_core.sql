-- Ticket core: the ticket as the hub of clinical work. State machines as data, tickets, their
-- timeline, prescription items and in-app notifications; the legacy chat and prescription
-- tables gain their ticket columns (additive only: every legacy row and query keeps working).
-- Indexes on the legacy tables are built concurrently by the next migration.

-- State machines ------------------------------------------------------------------------------

create table public.ticket_types (
    ticket_type text primary key check (
        ticket_type in ('prescription', 'consultation', 'referral', 'diagnostic', 'counseling')
    ),
    initial_status text not null,
    -- The status at which a ticket without a fulfiller is open for claiming (null: never).
    claimable_status text,
    claimed_status text,
    fulfiller_kind text not null check (
        fulfiller_kind in (
            'doctor', 'pharmacy', 'specialist', 'diagnostics_center', 'counselor', 'clinic'
        )
    ),
    constraint ticket_types_claiming_check check (
        (claimable_status is null) = (claimed_status is null)
    )
);

comment on table public.ticket_types is
'One row per ticket type: where its state machine starts and how it is claimed.';

create table public.ticket_statuses (
    ticket_type text not null references public.ticket_types (ticket_type) on delete cascade,
    status text not null,
    -- Progress order: the system may move a ticket only to a status of higher rank.
    rank integer not null,
    is_terminal boolean not null default false,
    primary key (ticket_type, status)
);

create table public.ticket_status_transitions (
    ticket_type text not null,
    from_status text not null,
    to_status text not null,
    actor text not null check (actor in ('patient', 'primary', 'secondary', 'admin', 'system')),
    primary key (ticket_type, from_status, to_status, actor),
    foreign key (ticket_type, from_status) references public.ticket_statuses (
        ticket_type, status
    ) on delete cascade,
    foreign key (ticket_type, to_status) references public.ticket_statuses (
        ticket_type, status
    ) on delete cascade
);

create index ticket_status_transitions_to_status_idx on public.ticket_status_transitions (
    ticket_type, to_status
);

insert into public.ticket_types (
    ticket_type, initial_status, claimable_status, claimed_status, fulfiller_kind
)
values
('prescription', 'created', null, null, 'pharmacy'),
('consultation', 'requested', 'requested', 'accepted', 'doctor'),
('referral', 'created', 'sent', 'accepted', 'specialist'),
('diagnostic', 'created', null, null, 'diagnostics_center'),
('counseling', 'open', 'open', 'claimed', 'counselor');

insert into public.ticket_statuses (ticket_type, status, rank, is_terminal)
values
('prescription', 'created', 0, false),
('prescription', 'sent', 10, false),
('prescription', 'received', 20, false),
('prescription', 'processing', 30, false),
('prescription', 'ready', 40, false),
('prescription', 'shipped', 50, false),
('prescription', 'out_for_delivery', 60, false),
('prescription', 'delivered', 70, true),
('prescription', 'completed', 70, true),
('prescription', 'cancelled', 90, true),
('prescription', 'failed', 90, true),
('consultation', 'requested', 0, false),
('consultation', 'accepted', 10, false),
('consultation', 'in_progress', 20, false),
('consultation', 'completed', 30, true),
('consultation', 'declined', 90, true),
('consultation', 'cancelled', 90, true),
('referral', 'created', 0, false),
('referral', 'sent', 10, false),
('referral', 'accepted', 20, false),
('referral', 'scheduled', 30, false),
('referral', 'completed', 40, true),
('referral', 'declined', 90, true),
('referral', 'cancelled', 90, true),
('diagnostic', 'created', 0, false),
('diagnostic', 'sent', 10, false),
('diagnostic', 'scheduled', 20, false),
('diagnostic', 'in_progress', 30, false),
('diagnostic', 'results_ready', 40, false),
('diagnostic', 'completed', 50, true),
('diagnostic', 'cancelled', 90, true),
('diagnostic', 'failed', 90, true),
('counseling', 'open', 0, false),
('counseling', 'claimed', 10, false),
('counseling', 'scheduled', 20, false),
('counseling', 'completed', 30, false),
('counseling', 'closed', 90, true);

alter table public.ticket_types
add constraint ticket_types_initial_status_fkey foreign key (
    ticket_type, initial_status
) references public.ticket_statuses (ticket_type, status) deferrable initially deferred,
add constraint ticket_types_claimable_status_fkey foreign key (
    ticket_type, claimable_status
) references public.ticket_statuses (ticket_type, status) deferrable initially deferred,
add constraint ticket_types_claimed_status_fkey foreign key (
    ticket_type, claimed_status
) references public.ticket_statuses (ticket_type, status) deferrable initially deferred;

-- Indexes behind ticket_types' foreign keys to ticket_statuses, as every foreign key has one
-- (the table holds five rows; the rule keeps the schema lint simple and uniform).
create index ticket_types_initial_status_idx on public.ticket_types (
    ticket_type, initial_status
);
create index ticket_types_claimable_status_idx on public.ticket_types (
    ticket_type, claimable_status
);
create index ticket_types_claimed_status_idx on public.ticket_types (ticket_type, claimed_status);

insert into public.ticket_status_transitions (ticket_type, from_status, to_status, actor)
values
-- prescription: the doctor sends; the pharmacy fulfils.
('prescription', 'created', 'sent', 'primary'),
('prescription', 'created', 'cancelled', 'primary'),
('prescription', 'sent', 'cancelled', 'primary'),
('prescription', 'received', 'cancelled', 'primary'),
('prescription', 'sent', 'received', 'secondary'),
('prescription', 'received', 'processing', 'secondary'),
('prescription', 'processing', 'ready', 'secondary'),
('prescription', 'ready', 'shipped', 'secondary'),
('prescription', 'shipped', 'out_for_delivery', 'secondary'),
('prescription', 'out_for_delivery', 'delivered', 'secondary'),
('prescription', 'ready', 'completed', 'secondary'),
('prescription', 'processing', 'shipped', 'secondary'),
('prescription', 'shipped', 'delivered', 'secondary'),
-- The pharmacy never sees a prescription ticket while it is 'created', so it cancels from 'sent'.
('prescription', 'sent', 'cancelled', 'secondary'),
('prescription', 'received', 'cancelled', 'secondary'),
('prescription', 'processing', 'cancelled', 'secondary'),
('prescription', 'ready', 'cancelled', 'secondary'),
('prescription', 'processing', 'failed', 'secondary'),
('prescription', 'shipped', 'failed', 'secondary'),
('prescription', 'out_for_delivery', 'failed', 'secondary'),
-- consultation: the patient asks; a GP (assigned, or by claim) answers.
('consultation', 'requested', 'accepted', 'secondary'),
('consultation', 'accepted', 'in_progress', 'secondary'),
('consultation', 'in_progress', 'completed', 'secondary'),
('consultation', 'requested', 'declined', 'secondary'),
('consultation', 'requested', 'cancelled', 'patient'),
('consultation', 'accepted', 'cancelled', 'patient'),
-- referral: the GP sends; the specialist (assigned, or by claim) takes it.
('referral', 'created', 'sent', 'primary'),
('referral', 'sent', 'accepted', 'secondary'),
('referral', 'accepted', 'scheduled', 'secondary'),
('referral', 'scheduled', 'completed', 'secondary'),
('referral', 'sent', 'declined', 'secondary'),
('referral', 'created', 'cancelled', 'primary'),
('referral', 'sent', 'cancelled', 'primary'),
('referral', 'accepted', 'cancelled', 'primary'),
-- diagnostic: the doctor orders; the centre runs it; the doctor closes it on the results.
('diagnostic', 'created', 'sent', 'primary'),
('diagnostic', 'sent', 'scheduled', 'secondary'),
('diagnostic', 'scheduled', 'in_progress', 'secondary'),
('diagnostic', 'in_progress', 'results_ready', 'secondary'),
('diagnostic', 'results_ready', 'completed', 'primary'),
('diagnostic', 'created', 'cancelled', 'primary'),
('diagnostic', 'sent', 'cancelled', 'primary'),
('diagnostic', 'scheduled', 'cancelled', 'primary'),
('diagnostic', 'in_progress', 'failed', 'secondary'),
-- counseling: the patient opens; a counsellor claims, schedules and holds the session.
('counseling', 'claimed', 'scheduled', 'secondary'),
('counseling', 'scheduled', 'completed', 'secondary'),
('counseling', 'completed', 'closed', 'patient'),
('counseling', 'completed', 'closed', 'secondary'),
('counseling', 'open', 'closed', 'patient');

-- An admin may cancel (counselling: close) any ticket that has not ended.
insert into public.ticket_status_transitions (ticket_type, from_status, to_status, actor)
select
    s.ticket_type,
    s.status as from_status,
    t.status as to_status,
    'admin' as actor
from public.ticket_statuses as s
inner join public.ticket_statuses as t
    on
        s.ticket_type = t.ticket_type
        and t.status = case when s.ticket_type = 'counseling' then 'closed' else 'cancelled' end
where not s.is_terminal;

-- Tickets -------------------------------------------------------------------------------------

create table public.healthcare_tickets (
    id uuid primary key default gen_random_uuid(),
    ticket_type text not null references public.ticket_types (ticket_type),
    -- Set to the type's initial status by a trigger when not given.
    status text not null,
    patient_id uuid references public.profile (id) on delete restrict,
    -- The requester (doctor, GP); null for tickets a patient opens.
    primary_provider_id uuid references public.providers (id) on delete restrict,
    -- The fulfiller; null while the ticket is open for claiming.
    secondary_provider_id uuid references public.providers (id) on delete restrict,
    -- Defaults to the type's fulfiller kind (trigger).
    required_provider_kind text not null check (
        required_provider_kind in (
            'doctor', 'pharmacy', 'specialist', 'diagnostics_center', 'counselor', 'clinic'
        )
    ),
    appointment_id uuid references public.reservation (id) on delete set null,
    prescription_id uuid unique references public.prescriptions (id) on delete restrict,
    title text,
    description text,
    category text,
    urgency text not null default 'normal' check (
        urgency in ('low', 'normal', 'high', 'urgent', 'crisis')
    ),
    session_mode text check (session_mode in ('video', 'audio', 'chat', 'in_person')),
    scheduled_time timestamptz,
    meeting_link text,
    created_by uuid references public.profile (id) on delete set null,
    claimed_at timestamptz,
    closed_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    metadata jsonb not null default '{}',
    -- The legacy chat thread a backfilled ticket stands for. Deliberately not a foreign key:
    -- chat_threads.ticket_id is the one link PostgREST embeds through.
    legacy_thread_id uuid unique,
    foreign key (ticket_type, status) references public.ticket_statuses (ticket_type, status),
    constraint healthcare_tickets_prescription_required check (
        ticket_type <> 'prescription'
        or prescription_id is not null
        or status in ('created', 'cancelled')
    ),
    constraint healthcare_tickets_prescription_only_on_prescription_tickets check (
        prescription_id is null or ticket_type = 'prescription'
    ),
    -- Prescriptions and diagnostic orders go to a named fulfiller; they are never claimed.
    constraint healthcare_tickets_fulfiller_required check (
        ticket_type not in ('prescription', 'diagnostic')
        or secondary_provider_id is not null
        or status in ('created', 'cancelled')
    ),
    constraint healthcare_tickets_counseling_schedule_check check (
        ticket_type <> 'counseling'
        or status <> 'scheduled'
        or (
            scheduled_time is not null
            and (
                coalesce(session_mode, 'chat') not in ('video', 'audio')
                or meeting_link is not null
            )
        )
    )
);

comment on table public.healthcare_tickets is
'One row per piece of clinical work; thread, prescription, timeline and notifications hang off it.';

create index healthcare_tickets_patient_id_idx on public.healthcare_tickets (
    patient_id, created_at desc
);
create index healthcare_tickets_primary_provider_id_idx on public.healthcare_tickets (
    primary_provider_id, created_at desc
);
-- The fulfiller's inbox: newest tickets of one type for one provider.
create index healthcare_tickets_secondary_provider_id_idx on public.healthcare_tickets (
    secondary_provider_id, ticket_type, created_at desc
);
-- Open tickets (no fulfiller yet) by the kind of provider that may claim them.
create index healthcare_tickets_open_idx on public.healthcare_tickets (
    required_provider_kind, created_at desc
) where secondary_provider_id is null;
create index healthcare_tickets_type_status_idx on public.healthcare_tickets (ticket_type, status);
create index healthcare_tickets_appointment_id_idx on public.healthcare_tickets (appointment_id);
create index healthcare_tickets_created_by_idx on public.healthcare_tickets (created_by);
-- One live prescription ticket per appointment and pharmacy (get_or_create relies on it).
create unique index healthcare_tickets_one_prescription_per_pharmacy_idx
on public.healthcare_tickets (appointment_id, secondary_provider_id)
where ticket_type = 'prescription' and status not in ('cancelled', 'failed');

create table public.ticket_timeline (
    id uuid primary key default gen_random_uuid(),
    ticket_id uuid not null references public.healthcare_tickets (id) on delete cascade,
    event_type text not null,
    from_status text,
    to_status text,
    -- Who acted (auth.uid()); no foreign key, so the record outlives the account.
    actor_id uuid,
    actor_kind text not null check (
        actor_kind in ('patient', 'primary', 'secondary', 'admin', 'system')
    ),
    source text not null,
    details jsonb not null default '{}',
    created_at timestamptz not null default clock_timestamp()
);

comment on table public.ticket_timeline is
'Append-only history of each ticket, written by triggers only.';

create index ticket_timeline_ticket_id_idx on public.ticket_timeline (ticket_id, created_at);

-- Legacy tables gain their ticket columns -----------------------------------------------------
-- A nullable column without a default (or with a constant one) is a catalog-only change; the
-- foreign keys and checks are added NOT VALID and validated after the concurrent index builds,
-- so nothing holds a long lock on a large table.

alter table public.chat_threads add column if not exists ticket_id uuid;
alter table public.chat_threads
add constraint chat_threads_ticket_id_fkey foreign key (ticket_id)
references public.healthcare_tickets (id) on delete cascade not valid;

alter table public.chat_thread_members add column if not exists last_read_at timestamptz;

alter table public.chat_messages add column if not exists kind text not null default 'text';
alter table public.chat_messages add column if not exists metadata jsonb not null default '{}';
alter table public.chat_messages
add constraint chat_messages_kind_check check (
    kind in ('text', 'image', 'file', 'system')
) not valid;
-- clock_timestamp(), not now(): messages (like timeline rows and notifications) written in one
-- transaction keep their order.
alter table public.chat_messages alter column created_at set default clock_timestamp();

alter table public.prescriptions add column if not exists external_order_id text;
alter table public.prescriptions add column if not exists rx_number text;
-- Set when the prescription's ticket is sent: from then on its clinical fields are frozen and
-- the pharmacy may read it.
alter table public.prescriptions add column if not exists sent_at timestamptz;
alter table public.prescriptions add column if not exists updated_at timestamptz not null
default now();

-- Prescription items and notifications --------------------------------------------------------

create table public.prescription_items (
    id uuid primary key default gen_random_uuid(),
    prescription_id uuid not null references public.prescriptions (id) on delete cascade,
    medication_name text not null check (length(btrim(medication_name)) > 0),
    dosage text,
    quantity integer check (quantity > 0),
    refills integer not null default 0 check (refills >= 0),
    directions text,
    days_supply integer check (days_supply > 0),
    created_at timestamptz not null default now()
);

create index prescription_items_prescription_id_idx on public.prescription_items (
    prescription_id
);

create table public.notifications (
    id uuid primary key default gen_random_uuid(),
    recipient_id uuid not null references public.profile (id) on delete cascade,
    ticket_id uuid references public.healthcare_tickets (id) on delete cascade,
    type text not null,
    title text not null,
    body text,
    data jsonb not null default '{}',
    created_at timestamptz not null default clock_timestamp(),
    read_at timestamptz
);

-- A user's newest notifications (and the unread badge).
create index notifications_recipient_id_idx on public.notifications (
    recipient_id, created_at desc
);
create index notifications_ticket_id_idx on public.notifications (ticket_id);

alter table public.ticket_types enable row level security;
alter table public.ticket_statuses enable row level security;
alter table public.ticket_status_transitions enable row level security;
alter table public.healthcare_tickets enable row level security;
alter table public.ticket_timeline enable row level security;
alter table public.prescription_items enable row level security;
alter table public.notifications enable row level security;
