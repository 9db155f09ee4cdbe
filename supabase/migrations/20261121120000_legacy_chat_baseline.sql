-- Legacy baseline: the chat and prescription tables as the existing product has them.
-- Every statement is `if not exists`, so on the live database (where they exist) this file
-- changes nothing; on a new database it recreates what the ticket migrations build upon.

create table if not exists public.chat_threads (
    id uuid primary key default gen_random_uuid(),
    order_id uuid,
    order_type text,
    title text,
    metadata jsonb not null default '{}',
    created_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table if not exists public.chat_thread_members (
    thread_id uuid not null references public.chat_threads (id) on delete cascade,
    profile_id uuid not null references public.profile (id) on delete cascade,
    role text,
    created_at timestamptz not null default now(),
    primary key (thread_id, profile_id)
);

create table if not exists public.chat_messages (
    id uuid primary key default gen_random_uuid(),
    thread_id uuid not null references public.chat_threads (id) on delete cascade,
    sender_id uuid references public.profile (id) on delete set null,
    body text not null,
    created_at timestamptz not null default now()
);

create table if not exists public.prescriptions (
    id uuid primary key default gen_random_uuid(),
    doctor_id uuid references public.profile (id) on delete set null,
    pharmacy_id uuid references public.providers (id) on delete set null,
    patient_id uuid references public.profile (id) on delete set null,
    appointment_id uuid,
    medications jsonb not null default '[]',
    notes text,
    created_at timestamptz not null default now()
);

-- The legacy product's lookups: a thread by its order (+ metadata->>target_id), a thread's
-- messages, a user's threads. Small on a new database; present already on the live one.
create index if not exists chat_threads_order_id_idx on public.chat_threads (order_id);
create index if not exists chat_threads_created_by_idx on public.chat_threads (created_by);
create index if not exists chat_messages_thread_id_idx on public.chat_messages (
    thread_id, created_at
);
create index if not exists chat_messages_sender_id_idx on public.chat_messages (sender_id);
create index if not exists chat_thread_members_profile_id_idx on public.chat_thread_members (
    profile_id
);
create index if not exists prescriptions_doctor_id_idx on public.prescriptions (doctor_id);
create index if not exists prescriptions_pharmacy_id_idx on public.prescriptions (pharmacy_id);
create index if not exists prescriptions_patient_id_idx on public.prescriptions (patient_id);
create index if not exists prescriptions_appointment_id_idx on public.prescriptions (
    appointment_id
);

alter table public.chat_threads enable row level security;
alter table public.chat_thread_members enable row level security;
alter table public.chat_messages enable row level security;
alter table public.prescriptions enable row level security;
