"""Realistic legacy data for the backfill's tests and benchmark: chat threads as the legacy
product made them (order_id = appointment id, order_type, metadata.target_id = the pharmacy or,
in old rows, a pharmacist's user id), with their members, messages, prescriptions, reservations
and unmatched Lifefile events.

Shares of threads (by a hash of their number, so any size gets each kind):
- 70 % prescription threads with a prescription (of which 10 % name a pharmacist's user id as
  target, 10 % have a Lifefile order with history waiting in the inbox, 30 % name their
  prescription in metadata.prescription_id), 10 % prescription threads without a prescription,
  5 % with a pharmacist's user id as target and no prescription, 5 % with no patient, 5 % with
  two patients (ambiguous), 5 % of another order type ('lab_order').
- 3 members (doctor, patient, a pharmacist) and 5 messages per thread on average.

The legacy rows predate the ticket triggers, so they are written as the legacy product wrote
them: with session_replication_role = replica (no triggers; superuser only: local tests and
benchmarks, never a real database).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True)
class Generated:
    threads: int
    members: int
    messages: int
    prescriptions: int
    lifefile_events: int


_STEPS = [
    # Parameters: n threads, nd doctors, np pharmacies, npat patients, tag.
    """
    create temp table gen_doctor on commit drop as
    select g, gen_random_uuid() as id, gen_random_uuid() as provider_id,
        gen_random_uuid() as service_id
    from generate_series(1, %(nd)s) as g
    """,
    """
    create temp table gen_pharmacy on commit drop as
    select g, gen_random_uuid() as id from generate_series(1, %(np)s) as g
    """,
    """
    create temp table gen_pharmacist on commit drop as
    select p.g as pharmacy_g, k, gen_random_uuid() as id, p.id as pharmacy_id
    from gen_pharmacy as p cross join generate_series(1, 3) as k
    """,
    """
    create temp table gen_patient on commit drop as
    select g, gen_random_uuid() as id from generate_series(1, %(npat)s) as g
    """,
    """
    create temp table gen_thread on commit drop as
    select
        g,
        gen_random_uuid() as id,
        gen_random_uuid() as reservation_id,
        gen_random_uuid() as slot_id,
        gen_random_uuid() as rx_id,
        1 + g %% %(nd)s as doctor_g,
        g / %(nd)s as doctor_seq,
        1 + (g * 31) %% %(np)s as pharmacy_g,
        1 + (g * 7) %% 3 as pharmacist_k,
        1 + (g * 17) %% %(npat)s as patient_g,
        1 + (g * 13 + 1) %% %(npat)s as patient2_g,
        (g * 37) %% 100 as bucket,
        timestamptz '2026-06-01 09:00 UTC' - make_interval(mins => (g * 53) %% 525600) as at
    from generate_series(1, %(n)s) as g
    """,
    """
    insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data,
        created_at, updated_at)
    select id, 'authenticated', 'authenticated', who || '-' || g || '-' || %(tag)s
        || '@legacy.test', jsonb_build_object('role', role), '{}', now(), now()
    from (
        select id, g, 'doctor' as who, 'doctor' as role from gen_doctor
        union all
        select id, pharmacy_g * 10 + k, 'pharmacist', 'pharmacist' from gen_pharmacist
        union all
        select id, g, 'patient', 'patient' from gen_patient
    ) as u
    """,
    """
    insert into public.profile (id, role, full_name, email)
    select id, role, initcap(who) || ' ' || g, who || '-' || g || '-' || %(tag)s || '@legacy.test'
    from (
        select id, g, 'doctor' as who, 'doctor' as role from gen_doctor
        union all
        select id, pharmacy_g * 10 + k, 'pharmacist', 'pharmacist' from gen_pharmacist
        union all
        select id, g, 'patient', 'patient' from gen_patient
    ) as u
    """,
    """
    insert into public.providers (id, kind, name)
    select provider_id, 'doctor', 'Legacy practice ' || g || ' ' || %(tag)s from gen_doctor
    union all
    select id, 'pharmacy', 'Legacy pharmacy ' || g || ' ' || %(tag)s from gen_pharmacy
    """,
    """
    insert into public.provider_members (provider_id, profile_id, member_role)
    select provider_id, id, 'owner' from gen_doctor
    union all
    select pharmacy_id, id, case when k = 1 then 'owner' else 'staff' end from gen_pharmacist
    """,
    """
    insert into public.medical_service (id, profile_id, name, duration)
    select service_id, id, 'Visit', 30 from gen_doctor
    """,
    # Threads without a patient (buckets 80-89) have no reservation behind their order_id.
    """
    insert into public.time_slot (id, profile_id, service_id, start_time, end_time, status,
        current_reservations)
    select t.slot_id, d.id, d.service_id,
        timestamptz '2024-01-01 08:00 UTC' + make_interval(mins => t.doctor_seq * 2),
        timestamptz '2024-01-01 08:01 UTC' + make_interval(mins => t.doctor_seq * 2),
        'reserved', 1
    from gen_thread as t inner join gen_doctor as d on t.doctor_g = d.g
    where t.bucket not between 80 and 89
    """,
    """
    insert into public.reservation (id, profile_id, slot_id, service_id, patient_id,
        patient_name, patient_phone, status, created_at)
    select t.reservation_id, d.id, t.slot_id, d.service_id, p.id, 'Patient ' || p.g,
        '+15555550100', 'completed', t.at - interval '1 day'
    from gen_thread as t
    inner join gen_doctor as d on t.doctor_g = d.g
    inner join gen_patient as p on t.patient_g = p.g
    where t.bucket not between 80 and 89
    """,
    """
    insert into public.prescriptions (id, doctor_id, pharmacy_id, patient_id, appointment_id,
        medications, external_order_id, created_at)
    select t.rx_id, d.id, ph.id, p.id, t.reservation_id,
        '[{"name": "Amoxicillin 500 mg", "quantity": 30}]',
        case when t.bucket between 10 and 19 then 'LF-' || %(tag)s || '-' || t.g end,
        t.at + interval '1 hour'
    from gen_thread as t
    inner join gen_doctor as d on t.doctor_g = d.g
    inner join gen_pharmacy as ph on t.pharmacy_g = ph.g
    inner join gen_patient as p on t.patient_g = p.g
    where t.bucket < 70
    """,
    """
    insert into public.chat_threads (id, order_id, order_type, title, metadata, created_by,
        created_at, updated_at)
    select
        t.id,
        case when t.bucket between 80 and 89 then gen_random_uuid() else t.reservation_id end,
        case when t.bucket between 90 and 94 then 'lab_order' else 'prescription' end,
        'Prescription chat ' || t.g,
        jsonb_strip_nulls(jsonb_build_object(
            'target_id', case
                when t.bucket < 7 or t.bucket >= 95 then pm.id
                else ph.id
            end,
            'prescription_id', case when t.bucket between 20 and 49 then t.rx_id end
        )),
        d.id,
        t.at,
        t.at + interval '2 days'
    from gen_thread as t
    inner join gen_doctor as d on t.doctor_g = d.g
    inner join gen_pharmacy as ph on t.pharmacy_g = ph.g
    inner join gen_pharmacist as pm on pm.pharmacy_g = t.pharmacy_g and pm.k = t.pharmacist_k
    """,
    """
    insert into public.chat_thread_members (thread_id, profile_id, role, created_at)
    select t.id, m.profile_id, m.role, t.at
    from gen_thread as t
    inner join gen_doctor as d on t.doctor_g = d.g
    inner join gen_patient as p on t.patient_g = p.g
    inner join gen_patient as p2 on t.patient2_g = p2.g
    inner join gen_pharmacist as pm on pm.pharmacy_g = t.pharmacy_g and pm.k = t.pharmacist_k
    cross join lateral (
        select d.id as profile_id, 'doctor' as role
        union all
        select p.id, 'patient' where t.bucket not between 80 and 84
        union all
        select p2.id, 'patient' where t.bucket between 85 and 89 and p2.id <> p.id
        union all
        select pm.id, 'pharmacist'
    ) as m
    """,
    """
    insert into public.chat_messages (thread_id, sender_id, body, kind, created_at)
    select t.id,
        case n.k %% 3
            when 0 then d.id
            when 1 then case when t.bucket between 80 and 84 then d.id else p.id end
            else pm.id
        end,
        'Legacy message ' || n.k || ' of thread ' || t.g, 'text',
        t.at + make_interval(mins => n.k * 7)
    from gen_thread as t
    inner join gen_doctor as d on t.doctor_g = d.g
    inner join gen_patient as p on t.patient_g = p.g
    inner join gen_pharmacist as pm on pm.pharmacy_g = t.pharmacy_g and pm.k = t.pharmacist_k
    cross join generate_series(0, 3 + t.g %% 3) as n (k)
    """,
    # Lifefile told us about these orders before any ticket could match them.
    """
    insert into private.lifefile_webhook_events (dedupe_key, body, payload, status, attempts,
        shape, order_id, external_status, occurred_at, received_at, last_error)
    select
        'id:legacy-' || %(tag)s || '-' || t.g || '-' || s.n,
        e.payload::text, e.payload, 'unmatched', 10, 'event', 'LF-' || %(tag)s || '-' || t.g,
        s.status, t.at + make_interval(days => s.n), t.at + make_interval(days => s.n),
        'no sent prescription has this order'
    from gen_thread as t
    cross join lateral (
        values (1, 'processing'), (2, 'shipped'), (3, 'delivered')
    ) as s (n, status)
    cross join lateral (
        select jsonb_strip_nulls(jsonb_build_object(
            'eventType', 'prescription.status.update',
            'prescription', jsonb_build_object('orderId', 'LF-' || %(tag)s || '-' || t.g),
            'status', jsonb_build_object(
                'current', s.status,
                'changedAt', to_char(
                    (t.at + make_interval(days => s.n)) at time zone 'UTC',
                    'YYYY-MM-DD"T"HH24:MI:SS"Z"'
                )
            ),
            'tracking', case when s.status = 'shipped' then jsonb_build_object(
                'trackingNumber', '1Z' || t.g, 'carrier', 'UPS'
            ) end
        )) as payload
    ) as e
    where t.bucket between 10 and 19 and (s.n < 3 or t.g %% 2 = 0)
    """,
]


def generate_legacy_threads(conn: psycopg.Connection[Any], threads: int) -> Generated:
    """Write ``threads`` legacy threads (and everything they refer to) in one transaction on
    ``conn`` (a superuser connection). Returns what was written."""
    params = {
        "n": threads,
        "nd": max(2, threads // 500),
        "np": max(2, threads // 5000),
        "npat": max(3, threads // 4),
        "tag": secrets.token_hex(4),
    }
    with conn.transaction():
        conn.execute("set local session_replication_role = replica")
        counts: list[int] = []
        for step in _STEPS:
            cursor = conn.execute(step, params)
            counts.append(cursor.rowcount)
    for table in (
        "chat_threads",
        "chat_thread_members",
        "chat_messages",
        "prescriptions",
        "reservation",
        "time_slot",
        "profile",
        "providers",
        "provider_members",
    ):
        conn.execute(f"analyze public.{table}")
    conn.execute("analyze private.lifefile_webhook_events")
    return Generated(
        threads=counts[13],
        members=counts[14],
        messages=counts[15],
        prescriptions=counts[12],
        lifefile_events=counts[16],
    )
