-- Scheduling tables (the reservation schema): service catalogue, weekly availability rules,
-- materialised time slots, reservation requests (holds), reservations and appointment notes.
-- Behaviour (capacity, status, RPCs) and access (RLS policies) come in later migrations;
-- RLS is enabled here, so until then only the system sees these tables.

create extension if not exists btree_gist with schema extensions;

create table public.medical_service (
    id uuid primary key default gen_random_uuid(),
    profile_id uuid not null references public.profile (id) on delete cascade,
    name varchar(255) not null,
    description text,
    duration integer not null check (duration > 0),
    price numeric(10, 2) check (price >= 0),
    category varchar(100),
    requirements text,
    is_active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create index idx_medical_service_profile_id on public.medical_service (profile_id);
create index idx_medical_service_category on public.medical_service (category);

create table public.availability_rule (
    id uuid primary key default gen_random_uuid(),
    profile_id uuid not null references public.profile (id) on delete cascade,
    day_of_week integer not null check (day_of_week between 0 and 6),
    start_time time not null,
    end_time time not null,
    slot_duration integer not null default 30 check (slot_duration > 0),
    buffer_time integer not null default 0 check (buffer_time >= 0),
    max_appointments_per_slot integer not null default 1 check (max_appointments_per_slot >= 1),
    is_active boolean not null default true,
    effective_from date not null default current_date,
    effective_to date,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint chk_availability_rule_times check (end_time > start_time),
    constraint chk_availability_rule_effective check (
        effective_to is null or effective_to >= effective_from
    )
);

create index idx_availability_profile_id on public.availability_rule (profile_id, day_of_week);

create table public.time_slot (
    id uuid primary key default gen_random_uuid(),
    profile_id uuid not null references public.profile (id) on delete cascade,
    service_id uuid not null references public.medical_service (id) on delete cascade,
    start_time timestamptz not null,
    end_time timestamptz not null,
    max_reservations integer not null default 1 check (max_reservations >= 1),
    current_reservations integer not null default 0,
    status varchar(50) not null default 'available',
    created_at timestamptz not null default now(),
    expires_at timestamptz,
    constraint chk_time_slot_status check (
        status in ('available', 'pending_approval', 'reserved', 'expired', 'blocked')
    ),
    constraint chk_time_slot_logic check (end_time > start_time),
    constraint chk_time_slot_capacity check (
        current_reservations between 0 and max_reservations
    ),
    -- A practitioner is in one place at a time: slots never overlap, whatever their status.
    constraint time_slot_no_overlap exclude using gist (
        profile_id with =, tstzrange(start_time, end_time) with &&
    )
);

create index idx_time_slot_service_id on public.time_slot (service_id, start_time);
create index idx_time_slot_start_time on public.time_slot (start_time);
create index idx_time_slot_expires on public.time_slot (expires_at) where expires_at is not null;

create table public.reservation_request (
    id uuid primary key default gen_random_uuid(),
    profile_id uuid not null references public.profile (id) on delete cascade,
    slot_id uuid not null references public.time_slot (id) on delete cascade,
    service_id uuid not null references public.medical_service (id) on delete cascade,
    patient_id uuid references public.profile (id) on delete set null,
    patient_name varchar(255) not null,
    patient_phone varchar(50) not null,
    patient_email varchar(255),
    patient_age integer check (patient_age between 0 and 150),
    patient_gender varchar(20),
    chief_complaint text,
    symptoms text,
    medical_history text,
    current_medications text,
    allergies text,
    urgency_level varchar(20) not null default 'normal',
    preferred_contact_method varchar(20) not null default 'whatsapp',
    status varchar(50) not null default 'pending',
    requested_time timestamptz not null,
    expires_at timestamptz not null default now() + interval '30 minutes',
    approved_by uuid references public.profile (id) on delete set null,
    approved_at timestamptz,
    rejection_reason text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint chk_request_status check (status in ('pending', 'approved', 'rejected', 'expired')),
    constraint chk_urgency_level check (urgency_level in ('low', 'normal', 'high', 'urgent')),
    constraint chk_request_contact_method check (
        preferred_contact_method in ('whatsapp', 'phone', 'email')
    )
);

create index idx_request_profile_id on public.reservation_request (profile_id, status);
create index idx_request_slot_id on public.reservation_request (slot_id, status);
create index idx_request_service_id on public.reservation_request (service_id);
create index idx_request_patient_id on public.reservation_request (patient_id);
create index idx_request_approved_by on public.reservation_request (approved_by);
-- The expiry sweep reads pending requests by expiry time.
create index idx_request_expires on public.reservation_request (expires_at)
where status = 'pending';
create index idx_request_patient_phone on public.reservation_request (patient_phone);

create table public.reservation (
    id uuid primary key default gen_random_uuid(),
    profile_id uuid not null references public.profile (id) on delete cascade,
    slot_id uuid not null references public.time_slot (id) on delete cascade,
    service_id uuid not null references public.medical_service (id) on delete cascade,
    request_id uuid references public.reservation_request (id) on delete set null,
    patient_id uuid references public.profile (id) on delete set null,
    patient_name varchar(255) not null,
    patient_phone varchar(50) not null,
    patient_email varchar(255),
    status varchar(50) not null default 'confirmed',
    source varchar(50) not null default 'whatsapp',
    notes text,
    reminder_24h_sent boolean not null default false,
    reminder_2h_sent boolean not null default false,
    reminder_24h_scheduled boolean not null default false,
    reminder_2h_scheduled boolean not null default false,
    completed_at timestamptz,
    no_show boolean not null default false,
    price_at_booking numeric(10, 2),
    payment_status varchar(50) not null default 'pending',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    cancelled_at timestamptz,
    constraint chk_reservation_status check (
        status in ('confirmed', 'cancelled', 'completed', 'no_show')
    ),
    constraint chk_payment_status check (payment_status in ('pending', 'paid', 'cancelled')),
    constraint chk_reservation_source check (source in ('whatsapp', 'web', 'phone', 'direct'))
);

create index idx_reservation_profile_id on public.reservation (profile_id, status);
create index idx_reservation_slot_id on public.reservation (slot_id, status);
create index idx_reservation_service_id on public.reservation (service_id);
create index idx_reservation_request_id on public.reservation (request_id);
create index idx_reservation_patient_id on public.reservation (patient_id);
create index idx_reservation_patient_phone on public.reservation (patient_phone);
create index idx_reservation_created on public.reservation (created_at);

create table public.appointment_note (
    id uuid primary key default gen_random_uuid(),
    reservation_id uuid not null references public.reservation (id) on delete cascade,
    profile_id uuid not null references public.profile (id) on delete cascade,
    note_type varchar(50) not null,
    content text not null,
    is_private boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint chk_note_type check (
        note_type in ('diagnosis', 'treatment', 'follow_up', 'prescription')
    )
);

create index idx_note_reservation_id on public.appointment_note (reservation_id);
create index idx_note_profile_id on public.appointment_note (profile_id);

alter table public.medical_service enable row level security;
alter table public.availability_rule enable row level security;
alter table public.time_slot enable row level security;
alter table public.reservation_request enable row level security;
alter table public.reservation enable row level security;
alter table public.appointment_note enable row level security;

grant all on public.medical_service, public.availability_rule, public.time_slot,
public.reservation_request, public.reservation, public.appointment_note to service_role;
