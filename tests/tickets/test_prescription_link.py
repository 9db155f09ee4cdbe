"""A ticket is sent only with a prescription that fits it at that moment (access issue,
rule 2): a linked prescription keeps its patient, pharmacy and doctor, and the link is checked
again on every move past the draft."""

from __future__ import annotations

import psycopg
import pytest

from tests.helpers import as_user
from tests.tickets.factories import make_world, raises_sqlstate, ticket_at, write_prescription


@pytest.mark.parametrize("column", ["patient_id", "pharmacy_id", "doctor_id"])
def test_a_linked_prescription_keeps_its_patient_pharmacy_and_doctor(
    conn: psycopg.Connection, column: str
) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", with_prescription=False)
    rx = write_prescription(conn, world.doctor.owner, world.pharmacy.provider, world.patient)
    other = {
        "patient_id": world.other_patient,
        "pharmacy_id": world.other_pharmacy.provider,
        "doctor_id": world.doctor.staff,
    }[column]
    with as_user(conn, world.doctor.owner) as c:
        c.execute(
            "update public.healthcare_tickets set prescription_id = %s where id = %s", [rx, ticket]
        )
    # The attack: link a fitting prescription, then change whom it is for, then send.
    with as_user(conn, world.doctor.owner) as c, raises_sqlstate("CH007", "linked to a ticket"):
        c.execute(f"update public.prescriptions set {column} = %s where id = %s", [other, rx])
    with raises_sqlstate("CH007", "linked to a ticket"):
        conn.execute(f"update public.prescriptions set {column} = %s where id = %s", [other, rx])
    # An unlinked draft may still be corrected.
    draft = write_prescription(conn, world.doctor.owner, world.pharmacy.provider, world.patient)
    with as_user(conn, world.doctor.owner) as c:
        c.execute(
            "update public.prescriptions set patient_id = %s where id = %s",
            [world.other_patient, draft],
        )


def test_sending_checks_the_link_again(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    ticket = ticket_at(conn, world, "prescription", with_prescription=False)
    rx = write_prescription(conn, world.doctor.owner, world.pharmacy.provider, world.patient)
    with as_user(conn, world.doctor.owner) as c:
        c.execute(
            "update public.healthcare_tickets set prescription_id = %s where id = %s", [rx, ticket]
        )
    # A prescription that stopped fitting by any other way (here: its guard switched off, as
    # an old row or a manual fix could leave it) is caught when the ticket moves.
    conn.execute("alter table public.prescriptions disable trigger freeze_sent_prescription")
    conn.execute(
        "update public.prescriptions set pharmacy_id = %s where id = %s",
        [world.other_pharmacy.provider, rx],
    )
    conn.execute("alter table public.prescriptions enable trigger freeze_sent_prescription")
    with as_user(conn, world.doctor.owner) as c, raises_sqlstate("CH004", "another pharmacy"):
        c.execute("update public.healthcare_tickets set status = 'sent' where id = %s", [ticket])
    with raises_sqlstate("CH004", "another pharmacy"):
        conn.execute(
            "update public.healthcare_tickets set status = 'processing' where id = %s", [ticket]
        )
