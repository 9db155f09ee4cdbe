-- Demo data for local development (`carehub db migrate --seed`, `make run`). Fixed ids and
-- emails (listed in README.md) so people and scripts can refer to them. Re-runnable: every
-- insert skips rows that exist.

-- People: accounts are created the way GoTrue creates them; profiles follow by trigger.
insert into auth.users (
    id, aud, role, email, phone, raw_app_meta_data, raw_user_meta_data, email_confirmed_at,
    created_at, updated_at
)
values
(
    '00000000-0000-4000-8000-000000000001', 'authenticated', 'authenticated',
    'admin@carehub.test', null, '{"provider": "email", "role": "admin"}',
    '{"full_name": "Alex Admin"}', now(), now(), now()
),
(
    '00000000-0000-4000-8000-000000000002', 'authenticated', 'authenticated',
    'doctor@carehub.test', '15555550101', '{"provider": "email", "role": "doctor"}',
    '{"full_name": "Dr Ada Lovelace"}', now(), now(), now()
),
(
    '00000000-0000-4000-8000-000000000003', 'authenticated', 'authenticated',
    'pharmacist.owner@carehub.test', '15555550102',
    '{"provider": "email", "role": "pharmacist"}', '{"full_name": "Paula Pharmacist"}',
    now(), now(), now()
),
(
    '00000000-0000-4000-8000-000000000004', 'authenticated', 'authenticated',
    'pharmacist.staff@carehub.test', '15555550103',
    '{"provider": "email", "role": "pharmacist"}', '{"full_name": "Sam Staff"}',
    now(), now(), now()
),
(
    '00000000-0000-4000-8000-000000000005', 'authenticated', 'authenticated',
    'patient@carehub.test', '15555550100', '{"provider": "email", "role": "patient"}',
    '{"full_name": "Pat Patient"}', now(), now(), now()
)
on conflict (id) do nothing;

update public.profile
set
    timezone = 'Europe/Madrid',
    specialty = 'General practice',
    practice_type = 'general',
    medical_license = 'MED-0001'
where id = '00000000-0000-4000-8000-000000000002';

update public.profile
set sms_opt_in = true, preferred_contact_method = 'sms'
where id = '00000000-0000-4000-8000-000000000005';

-- Providers: the doctor's own practice, and a pharmacy with an owner and a member of staff.
insert into public.providers (id, kind, name, timezone, phone, external_ids)
values
(
    '10000000-0000-4000-8000-000000000001', 'doctor', 'Dr Ada Lovelace Practice',
    'Europe/Madrid', '+15555550101', '{}'
),
(
    '10000000-0000-4000-8000-000000000002', 'pharmacy', 'Green Cross Pharmacy',
    'Europe/Madrid', '+15555550102', '{"lifefile_pharmacy_id": "LF-PHARM-001"}'
)
on conflict (id) do nothing;

insert into public.provider_members (provider_id, profile_id, member_role)
values
('10000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', 'owner'),
('10000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000003', 'owner'),
('10000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000004', 'staff')
on conflict (provider_id, profile_id) do nothing;

-- Scheduling ---------------------------------------------------------------------------------
-- Dr Ada Lovelace (...0002) offers two services, works weekday mornings (consultations) and
-- afternoons (follow-ups), and has two weeks of slots from today, with requests and
-- reservations in several states. Requests are inserted only when their id is absent (not with
-- on conflict, whose insert triggers would take a place before the conflict is found).

insert into public.medical_service (
    id, profile_id, name, description, duration, price, category
)
values
(
    '20000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002',
    'General consultation', 'A first visit about a new health concern.', 30, 60.00,
    'consulta'
),
(
    '20000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000002',
    'Follow-up visit', 'A short visit to review treatment or results.', 15, 35.00,
    'consulta'
)
on conflict (id) do nothing;

insert into public.availability_rule (
    id, profile_id, service_id, day_of_week, start_time, end_time, slot_duration, buffer_time,
    max_appointments_per_slot, effective_from
)
select
    ('20000000-0000-4000-8000-0000000001' || rule.kind || day.dow)::uuid as id,
    '00000000-0000-4000-8000-000000000002' as profile_id,
    rule.service_id::uuid as service_id,
    day.dow,
    rule.start_time::time as start_time,
    rule.end_time::time as end_time,
    rule.slot_duration,
    rule.buffer_time,
    rule.capacity,
    current_date as effective_from
from pg_catalog.generate_series(1, 5) as day (dow)
cross join (
    values
    ('0', '20000000-0000-4000-8000-000000000001', '09:00', '13:00', 30, 0, 1),
    ('1', '20000000-0000-4000-8000-000000000002', '15:00', '17:00', 15, 5, 2)
) as rule (kind, service_id, start_time, end_time, slot_duration, buffer_time, capacity)
on conflict (id) do nothing;

select public.generate_time_slots(
    '00000000-0000-4000-8000-000000000002', '20000000-0000-4000-8000-000000000001',
    current_date, current_date + 13
);
select public.generate_time_slots(
    '00000000-0000-4000-8000-000000000002', '20000000-0000-4000-8000-000000000002',
    current_date, current_date + 13
);

-- Requests: the seeded patient (...0005) and three WhatsApp patients without an account, each
-- on the n-th free consultation slot. Holds last a day here so the demo shows pending ones.
insert into public.reservation_request (
    id, slot_id, patient_id, patient_name, patient_phone, patient_email, chief_complaint,
    urgency_level, requested_time, expires_at
)
select
    demo.id::uuid as id,
    (
        select s.id
        from public.time_slot as s
        where
            s.service_id = '20000000-0000-4000-8000-000000000001'
            and s.status = 'available'
            and s.start_time > now() + interval '1 day'
        order by s.start_time
        limit 1 offset demo.nth
    ) as slot_id,
    demo.patient_id::uuid as patient_id,
    demo.patient_name,
    demo.patient_phone,
    demo.patient_email,
    demo.chief_complaint,
    demo.urgency_level,
    now() as requested_time,
    now() + interval '1 day' as expires_at
from (
    values
    (
        '20000000-0000-4000-8000-000000000201', 0, '00000000-0000-4000-8000-000000000005',
        'Pat Patient', '+15555550100', 'patient@carehub.test', 'Persistent cough', 'normal'
    ),
    (
        '20000000-0000-4000-8000-000000000202', 2, null, 'Maria Garcia', '+34600111222', null,
        'Back pain after a fall', 'high'
    ),
    (
        '20000000-0000-4000-8000-000000000203', 4, null, 'John Smith', '+15555550199', null,
        'Annual check-up', 'low'
    ),
    (
        '20000000-0000-4000-8000-000000000204', 6, null, 'Lena Fischer', '+4915112345678',
        null, 'Rash on both arms', 'normal'
    )
)
    as demo (
        id, nth, patient_id, patient_name, patient_phone, patient_email, chief_complaint,
        urgency_level
    )
where not exists (
    select from public.reservation_request as r
    where r.id = demo.id::uuid
);

-- The patient's and John's requests are approved (each becomes a confirmed reservation),
-- Lena's is rejected, Maria's stays pending.
update public.reservation_request
set status = 'approved', approved_by = '00000000-0000-4000-8000-000000000002'
where
    id in ('20000000-0000-4000-8000-000000000201', '20000000-0000-4000-8000-000000000203')
    and status = 'pending';

update public.reservation_request
set status = 'rejected', rejection_reason = 'Please see a dermatologist for this.'
where id = '20000000-0000-4000-8000-000000000204' and status = 'pending';

insert into public.appointment_note (
    id, reservation_id, profile_id, note_type, content, is_private
)
select
    note.id::uuid as id,
    r.id as reservation_id,
    r.profile_id,
    note.note_type,
    note.content,
    note.is_private
from public.reservation as r
cross join (
    values
    (
        '20000000-0000-4000-8000-000000000301', 'follow_up',
        'Bring your inhaler to the visit.', false
    ),
    (
        '20000000-0000-4000-8000-000000000302', 'diagnosis',
        'Suspect post-viral cough; rule out asthma.', true
    )
) as note (id, note_type, content, is_private)
where r.request_id = '20000000-0000-4000-8000-000000000201'
on conflict (id) do nothing;
