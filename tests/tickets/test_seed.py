"""The demo seed: one living ticket of each type, re-runnable, following the ticket rules."""

from __future__ import annotations

import psycopg

from app.sqlfiles import split_statements
from tests.helpers import PROJECT_ROOT, as_user

SEED = PROJECT_ROOT / "supabase" / "seed.sql"
PHARMACY_STAFF = "00000000-0000-4000-8000-000000000004"
COUNSELOR = "00000000-0000-4000-8000-000000000012"
PATIENT = "00000000-0000-4000-8000-000000000005"


def apply_seed(conn: psycopg.Connection) -> None:
    with conn.transaction():
        for statement in split_statements(SEED.read_text()):
            conn.execute(statement.text)


def test_seed_shows_one_ticket_of_each_type_and_reruns_cleanly(conn: psycopg.Connection) -> None:
    apply_seed(conn)
    apply_seed(conn)
    tickets = conn.execute(
        "select t.ticket_type, t.status, count(m.id) from public.healthcare_tickets as t"
        " join public.chat_threads as th on th.ticket_id = t.id"
        " left join public.chat_messages as m on m.thread_id = th.id"
        " group by 1, 2 order by 1"
    ).fetchall()
    assert tickets == [
        ("consultation", "accepted", 2),
        ("counseling", "open", 0),
        ("diagnostic", "scheduled", 1),
        ("prescription", "processing", 2),
        ("referral", "accepted", 1),
    ]
    # The prescription ticket hangs off the patient's appointment: the legacy lookup finds it.
    legacy = conn.execute(
        "select th.metadata ->> 'target_id' from public.chat_threads as th"
        " join public.reservation as r on r.id = th.order_id"
        " where r.patient_id = %s and th.order_type = 'prescription'",
        [PATIENT],
    ).fetchall()
    assert legacy == [("10000000-0000-4000-8000-000000000002",)]
    sources = conn.execute("select distinct source from public.ticket_timeline").fetchall()
    assert sources == [("seed",)]
    with as_user(conn, PHARMACY_STAFF) as c:
        inbox = c.execute(
            "select t.status, p.rx_number is null from public.healthcare_tickets as t"
            " join public.prescriptions as p on p.id = t.prescription_id"
        ).fetchall()
        assert inbox == [("processing", True)]
    with as_user(conn, COUNSELOR) as c:
        open_tickets = c.execute("select ticket_type from public.healthcare_tickets").fetchall()
        assert open_tickets == [("counseling",)]


def test_seed_tickets_follow_the_opening_rules(conn: psycopg.Connection) -> None:
    """The seed writes as the system, but each ticket is one its opener could have opened
    through the API: the fulfiller's kind, a care relationship, a fitting appointment."""
    apply_seed(conn)
    broken = conn.execute(
        "select t.id, t.ticket_type from public.healthcare_tickets as t"
        " join public.ticket_types as tt on tt.ticket_type = t.ticket_type"
        " where t.required_provider_kind <> tt.fulfiller_kind"
        " or (t.primary_provider_id is not null"
        "     and not private.has_care_relationship(t.primary_provider_id, t.patient_id))"
        " or (t.ticket_type = 'prescription' and t.appointment_id is null)"
    ).fetchall()
    assert broken == []
    for (ticket,) in conn.execute("select id from public.healthcare_tickets").fetchall():
        conn.execute(
            "select private.check_ticket_appointment(t) from public.healthcare_tickets as t"
            " where t.id = %s",
            [ticket],
        )
