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

-- Tickets ------------------------------------------------------------------------------------
-- One ticket of each type at a realistic status, with its thread and messages. Ids start with
-- 30000000-… (providers …0001-…0003, tickets …0101-…0105); the extra people are …0010-…0012.
-- Status changes run as the system, one step at a time, so the timeline reads like real use.

select set_config('app.source', 'seed', true);

insert into auth.users (
    id, aud, role, email, phone, raw_app_meta_data, raw_user_meta_data, email_confirmed_at,
    created_at, updated_at
)
values
(
    '00000000-0000-4000-8000-000000000010', 'authenticated', 'authenticated',
    'specialist@carehub.test', '15555550110', '{"provider": "email", "role": "specialist"}',
    '{"full_name": "Dr Grace Hopper"}', now(), now(), now()
),
(
    '00000000-0000-4000-8000-000000000011', 'authenticated', 'authenticated',
    'diagnostics@carehub.test', '15555550111', '{"provider": "email", "role": "diagnostics"}',
    '{"full_name": "Dana Diagnostics"}', now(), now(), now()
),
(
    '00000000-0000-4000-8000-000000000012', 'authenticated', 'authenticated',
    'counselor@carehub.test', '15555550112', '{"provider": "email", "role": "counselor"}',
    '{"full_name": "Chris Counselor"}', now(), now(), now()
)
on conflict (id) do nothing;

insert into public.providers (id, kind, name, expertise, timezone, phone)
values
(
    '30000000-0000-4000-8000-000000000001', 'specialist', 'Hopper Cardiology',
    '{cardiology}', 'Europe/Madrid', '+15555550110'
),
(
    '30000000-0000-4000-8000-000000000002', 'diagnostics_center', 'City Diagnostics Lab',
    '{blood_test,imaging}', 'Europe/Madrid', '+15555550111'
),
(
    '30000000-0000-4000-8000-000000000003', 'counselor', 'Calm Minds Counselling',
    '{anxiety,stress}', 'Europe/Madrid', '+15555550112'
)
on conflict (id) do nothing;

insert into public.provider_members (provider_id, profile_id, member_role)
values
('30000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000010', 'owner'),
('30000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000011', 'owner'),
('30000000-0000-4000-8000-000000000003', '00000000-0000-4000-8000-000000000012', 'owner')
on conflict (provider_id, profile_id) do nothing;

-- Prescription: written by Dr Lovelace, sent to Green Cross, now being prepared.
-- The prescription ticket belongs to the patient's confirmed appointment of the scheduling
-- section (request …0201), so its thread also answers the legacy order_id lookup.
insert into public.prescriptions (
    id, doctor_id, pharmacy_id, patient_id, appointment_id, medications, notes
)
values (
    '30000000-0000-4000-8000-000000000201', '00000000-0000-4000-8000-000000000002',
    '10000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000005',
    (
        select r.id from public.reservation as r
        where r.request_id = '20000000-0000-4000-8000-000000000201'
    ),
    '[{"name": "Amoxicillin", "dosage": "500 mg", "quantity": 21}]',
    'Complete the full course.'
)
on conflict (id) do nothing;

-- Items freeze once the prescription is sent, so a re-run must not even try to insert them.
insert into public.prescription_items (
    id, prescription_id, medication_name, dosage, quantity, refills, directions, days_supply
)
select
    '30000000-0000-4000-8000-000000000301' as id,
    '30000000-0000-4000-8000-000000000201' as prescription_id,
    'Amoxicillin' as medication_name,
    '500 mg' as dosage,
    21 as quantity,
    0 as refills,
    'One capsule three times a day' as directions,
    7 as days_supply
where not exists (
    select from public.prescription_items
    where id = '30000000-0000-4000-8000-000000000301'
);

insert into public.healthcare_tickets (
    id, ticket_type, patient_id, primary_provider_id, secondary_provider_id, title,
    description, category, urgency, session_mode, created_by, appointment_id
)
values
(
    '30000000-0000-4000-8000-000000000101', 'prescription',
    '00000000-0000-4000-8000-000000000005', '10000000-0000-4000-8000-000000000001',
    '10000000-0000-4000-8000-000000000002', 'Amoxicillin for Pat Patient',
    'Post-viral cough with sinusitis, 7-day course', null, 'normal', null,
    '00000000-0000-4000-8000-000000000002',
    (
        select rx.appointment_id from public.prescriptions as rx
        where rx.id = '30000000-0000-4000-8000-000000000201'
    )
),
(
    '30000000-0000-4000-8000-000000000102', 'consultation',
    '00000000-0000-4000-8000-000000000005', null, '10000000-0000-4000-8000-000000000001',
    'Persistent cough', 'Three weeks of dry cough, worse at night', null, 'normal', 'video',
    '00000000-0000-4000-8000-000000000005', null
),
(
    '30000000-0000-4000-8000-000000000103', 'referral',
    '00000000-0000-4000-8000-000000000005', '10000000-0000-4000-8000-000000000001',
    '30000000-0000-4000-8000-000000000001', 'Cardiology opinion',
    'Palpitations on exertion; ECG attached', 'cardiology', 'high', 'in_person',
    '00000000-0000-4000-8000-000000000002', null
),
(
    '30000000-0000-4000-8000-000000000104', 'diagnostic',
    '00000000-0000-4000-8000-000000000005', '10000000-0000-4000-8000-000000000001',
    '30000000-0000-4000-8000-000000000002', 'Full blood count',
    'Fasting sample', 'blood_test', 'normal', 'in_person',
    '00000000-0000-4000-8000-000000000002', null
),
(
    '30000000-0000-4000-8000-000000000105', 'counseling',
    '00000000-0000-4000-8000-000000000005', null, null, 'Exam stress',
    'Trouble sleeping before exams', 'stress', 'high', 'video',
    '00000000-0000-4000-8000-000000000005', null
)
on conflict (id) do nothing;

update public.healthcare_tickets
set prescription_id = '30000000-0000-4000-8000-000000000201', status = 'sent'
where id = '30000000-0000-4000-8000-000000000101' and status = 'created';
update public.healthcare_tickets set status = 'received'
where id = '30000000-0000-4000-8000-000000000101' and status = 'sent';
update public.healthcare_tickets set status = 'processing'
where id = '30000000-0000-4000-8000-000000000101' and status = 'received';

update public.healthcare_tickets set status = 'accepted'
where id = '30000000-0000-4000-8000-000000000102' and status = 'requested';

update public.healthcare_tickets set status = 'sent'
where id = '30000000-0000-4000-8000-000000000103' and status = 'created';
update public.healthcare_tickets set status = 'accepted'
where id = '30000000-0000-4000-8000-000000000103' and status = 'sent';

update public.healthcare_tickets set status = 'sent'
where id = '30000000-0000-4000-8000-000000000104' and status = 'created';
update public.healthcare_tickets
set status = 'scheduled', scheduled_time = date_trunc('day', now()) + interval '2 days 9 hours'
where id = '30000000-0000-4000-8000-000000000104' and status = 'sent';

insert into public.chat_messages (id, thread_id, sender_id, body)
select
    m.id::uuid,
    th.id,
    m.sender_id::uuid,
    m.body
from (
    values
    (
        '30000000-0000-4000-8000-000000000401', '30000000-0000-4000-8000-000000000101',
        '00000000-0000-4000-8000-000000000002', 'Prescription sent; please confirm stock.'
    ),
    (
        '30000000-0000-4000-8000-000000000402', '30000000-0000-4000-8000-000000000101',
        '00000000-0000-4000-8000-000000000004', 'In stock, preparing it now.'
    ),
    (
        '30000000-0000-4000-8000-000000000403', '30000000-0000-4000-8000-000000000102',
        '00000000-0000-4000-8000-000000000005', 'Is tomorrow morning possible?'
    ),
    (
        '30000000-0000-4000-8000-000000000404', '30000000-0000-4000-8000-000000000102',
        '00000000-0000-4000-8000-000000000002', 'Yes, I will send you a link.'
    ),
    (
        '30000000-0000-4000-8000-000000000405', '30000000-0000-4000-8000-000000000103',
        '00000000-0000-4000-8000-000000000010', 'Accepted; we will call to book a slot.'
    ),
    (
        '30000000-0000-4000-8000-000000000406', '30000000-0000-4000-8000-000000000104',
        '00000000-0000-4000-8000-000000000011', 'Booked for 09:00; come fasting.'
    )
) as m (id, ticket_id, sender_id, body)
inner join public.chat_threads as th on m.ticket_id::uuid = th.ticket_id
on conflict (id) do nothing;

-- Lifefile fulfilment tracking ---------------------------------------------------------------
-- The prescription ticket above is Lifefile order LF-DEMO-1001. Lifefile has reported it sent,
-- received and in preparation (stored and processed through the real inbox, so its tracking
-- row and status history exist; the ticket was already there, so it does not move).
-- `carehub webhooks send-test --status shipped --order LF-DEMO-1001` moves it on.
update public.prescriptions
set external_order_id = 'LF-DEMO-1001'
where id = '30000000-0000-4000-8000-000000000201' and external_order_id is null;

-- Timed before the ticket was created (the seed creates everything at once), and the same on
-- every run, so a re-run sends the same events again, which the inbox recognises as duplicates.
select r.event_status
from public.healthcare_tickets as t
cross join
    lateral (
        values
        ('SENT_TO_PHARMACY', interval '50 minutes'),
        ('order_received', interval '35 minutes'),
        ('order_processing', interval '10 minutes')
    ) as e (status, before_created)
cross join
    lateral private.receive_lifefile_delivery(
        pg_catalog.jsonb_build_object(
            'eventType', 'prescription.status.update',
            'timestamp', t.created_at - e.before_created,
            'prescription', pg_catalog.jsonb_build_object(
                'orderId', 'LF-DEMO-1001', 'medicationName', 'Amoxicillin', 'quantity', 21
            ),
            'status', pg_catalog.jsonb_build_object(
                'current', e.status, 'changedAt', t.created_at - e.before_created
            )
        )::text,
        '{"user-agent": "carehub seed"}',
        'seed'
    ) as r
where t.id = '30000000-0000-4000-8000-000000000101';

select private.process_lifefile_events(100);
