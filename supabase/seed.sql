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

-- Lifefile fulfilment tracking: Dr Lovelace's prescription for Pat Patient, sent to Green Cross
-- Pharmacy as Lifefile order LF-DEMO-1001, which Lifefile has reported received and being
-- processed (through the real inbox and processing, so history and notifications exist).
-- `carehub webhooks send-test --status shipped --order LF-DEMO-1001` moves it on.
insert into public.prescriptions (
    id, doctor_id, pharmacy_id, patient_id, medications, notes, external_order_id, rx_number
)
values (
    '40000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002',
    '10000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000005',
    '[{"name": "Amoxicillin 500 mg", "dosage": "1 capsule every 8 hours"}]',
    'Seven-day course.', 'LF-DEMO-1001', 'RX-DEMO-1001'
)
on conflict (id) do nothing;

-- Not "on conflict do nothing": once the ticket is sent its items are frozen, and the freeze
-- trigger runs before any conflict is seen.
insert into public.prescription_items (
    id, prescription_id, medication_name, dosage, quantity, directions, days_supply
)
select
    '40000000-0000-4000-8000-000000000002' as id,
    '40000000-0000-4000-8000-000000000001' as prescription_id,
    'Amoxicillin 500 mg' as medication_name,
    '500 mg' as dosage,
    21 as quantity,
    'One capsule every 8 hours with food' as directions,
    7 as days_supply
where not exists (
    select from public.prescription_items
    where id = '40000000-0000-4000-8000-000000000002'
);

insert into public.healthcare_tickets (
    id, ticket_type, status, patient_id, primary_provider_id, secondary_provider_id,
    prescription_id, created_by, title, created_at
)
values (
    '40000000-0000-4000-8000-000000000003', 'prescription', 'created',
    '00000000-0000-4000-8000-000000000005', '10000000-0000-4000-8000-000000000001',
    '10000000-0000-4000-8000-000000000002', '40000000-0000-4000-8000-000000000001',
    '00000000-0000-4000-8000-000000000002', 'Amoxicillin for Pat Patient',
    now() - interval '3 hours'
)
on conflict (id) do nothing;

update public.healthcare_tickets
set status = 'sent'
where id = '40000000-0000-4000-8000-000000000003' and status = 'created';

-- The pushes Lifefile sent, timed from when the ticket was created (so a re-run sends the same
-- events again, which the inbox recognises as duplicates).
select r.event_status
from public.healthcare_tickets as t
cross join
    lateral (
        values
        ('SENT_TO_PHARMACY', interval '5 minutes'),
        ('order_received', interval '20 minutes'),
        ('order_processing', interval '95 minutes')
    ) as e (status, after_created)
cross join
    lateral private.receive_lifefile_delivery(
        pg_catalog.jsonb_build_object(
            'eventType', 'prescription.status.update',
            'timestamp', t.created_at + e.after_created,
            'prescription', pg_catalog.jsonb_build_object(
                'rxNumber', 'RX-DEMO-1001', 'orderId', 'LF-DEMO-1001',
                'medicationName', 'Amoxicillin 500 mg', 'quantity', 21
            ),
            'status', pg_catalog.jsonb_build_object(
                'current', e.status, 'changedAt', t.created_at + e.after_created
            )
        )::text,
        '{"user-agent": "carehub seed"}',
        'seed'
    ) as r
where t.id = '40000000-0000-4000-8000-000000000003';

select private.process_lifefile_events(100);
