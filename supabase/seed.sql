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
