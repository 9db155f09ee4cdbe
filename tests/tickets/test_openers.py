"""Who opens which ticket (ticket_openers), for which patient (the care relationship), hanging
off which appointment; required_provider_kind is the database's; a refused caller learns
nothing (access issue, rules 6, 8 and 9). Each attack runs as the attacker, through the API."""

from __future__ import annotations

import uuid

import psycopg

from tests.helpers import as_anon, as_user, create_provider, create_user
from tests.tickets.factories import (
    World,
    make_reservation,
    make_world,
    raises_sqlstate,
    set_status,
    ticket_at,
    write_prescription,
)

INSERT = (
    "insert into public.healthcare_tickets (ticket_type, patient_id, primary_provider_id,"
    " secondary_provider_id, title) values (%s, %s, %s, %s, 'x') returning id"
)


def open_ticket(
    conn: psycopg.Connection,
    user: uuid.UUID,
    ticket_type: str,
    patient: uuid.UUID,
    requester: uuid.UUID | None,
    fulfiller: uuid.UUID | None = None,
) -> uuid.UUID:
    with as_user(conn, user) as c:
        row = c.execute(INSERT, [ticket_type, patient, requester, fulfiller]).fetchone()
    assert row is not None
    return row[0]


def test_ticket_openers_are_data_every_signed_in_user_reads(conn: psycopg.Connection) -> None:
    user = create_user(conn, "patient")
    with as_user(conn, user) as c:
        rows = set(
            c.execute(
                "select ticket_type, opener_role, provider_kind from public.ticket_openers"
            ).fetchall()
        )
    assert rows == {
        ("consultation", "patient", None),
        ("counseling", "patient", None),
        ("prescription", "doctor", "doctor"),
        ("prescription", "doctor", "clinic"),
        ("referral", "doctor", "doctor"),
        ("referral", "doctor", "clinic"),
        ("diagnostic", "doctor", "doctor"),
        ("diagnostic", "doctor", "clinic"),
        ("diagnostic", "specialist", "specialist"),
    }
    for statement in (
        "insert into public.ticket_openers (ticket_type, opener_role)"
        " values ('referral', 'patient')",
        "delete from public.ticket_openers",
    ):
        with as_user(conn, user) as c, raises_sqlstate("42501"):
            c.execute(statement)
    with as_anon(conn) as c, raises_sqlstate("42501"):
        c.execute("select 1 from public.ticket_openers")


def test_pharmacy_staff_cannot_open_diagnostic_orders_or_referrals(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    # Even with a care relationship (a sent prescription ticket of the patient).
    ticket_at(conn, world, "prescription", "sent")
    for ticket_type, fulfiller in (
        ("diagnostic", world.diagnostics.provider),
        ("referral", world.specialist.provider),
    ):
        with raises_sqlstate("CH008", "does not open"):
            open_ticket(
                conn,
                world.pharmacy.staff,
                ticket_type,
                world.patient,
                world.pharmacy.provider,
                fulfiller,
            )
    assert conn.execute(
        "select count(*) from public.healthcare_tickets where primary_provider_id = %s",
        [world.pharmacy.provider],
    ).fetchone() == (0,)


def test_a_specialist_opens_diagnostic_orders_but_not_referrals(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    make_reservation(conn, world.specialist.owner, world.patient)
    open_ticket(
        conn,
        world.specialist.staff,
        "diagnostic",
        world.patient,
        world.specialist.provider,
        world.diagnostics.provider,
    )
    with raises_sqlstate("CH008", "does not open referral"):
        open_ticket(
            conn, world.specialist.staff, "referral", world.patient, world.specialist.provider
        )


def test_a_non_doctor_member_of_a_practice_cannot_open_its_tickets(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    receptionist = create_user(conn, "patient")
    conn.execute(
        "insert into public.provider_members (provider_id, profile_id, member_role)"
        " values (%s, %s, 'staff')",
        [world.doctor.provider, receptionist],
    )
    make_reservation(conn, world.doctor.owner, world.patient)
    with raises_sqlstate("CH008", "a patient of a doctor provider"):
        open_ticket(conn, receptionist, "referral", world.patient, world.doctor.provider)


def test_a_provider_opens_tickets_only_for_patients_it_cares_for(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    with raises_sqlstate("CH008", "no care relationship"):
        open_ticket(conn, world.doctor.staff, "referral", world.patient, world.doctor.provider)
    # A reservation of the patient with one of the practice's members counts...
    make_reservation(conn, world.doctor.owner, world.patient)
    open_ticket(conn, world.doctor.staff, "referral", world.patient, world.doctor.provider)
    # ...and so does a ticket the provider is a party to (here: the GP the patient consulted).
    with raises_sqlstate("CH008", "no care relationship"):
        open_ticket(conn, world.gp.owner, "diagnostic", world.patient, world.gp.provider)
    ticket_at(conn, world, "consultation", "accepted")
    open_ticket(
        conn,
        world.gp.owner,
        "diagnostic",
        world.patient,
        world.gp.provider,
        world.diagnostics.provider,
    )


def test_patients_open_only_their_own_tickets_of_patient_types(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    open_ticket(conn, world.patient, "consultation", world.patient, None, world.gp.provider)
    with raises_sqlstate("42501"):
        open_ticket(conn, world.patient, "consultation", world.other_patient, None)
    with raises_sqlstate("CH008", "patients do not open referral tickets"):
        open_ticket(conn, world.patient, "referral", world.patient, None)


def test_required_provider_kind_is_always_the_fulfillers_kind(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    # The attack: a consultation addressed to pharmacies.
    with (
        as_user(conn, world.patient) as c,
        raises_sqlstate("CH007", "always fulfilled by a doctor"),
    ):
        c.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id,"
            " required_provider_kind) values ('consultation', %s, 'pharmacy')",
            [world.patient],
        )
    # The attack: a prescription sent to a counsellor.
    appointment = make_reservation(conn, world.doctor.owner, world.patient)
    with as_user(conn, world.doctor.staff) as c, raises_sqlstate("CH007", "not a counselor"):
        c.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id, primary_provider_id,"
            " secondary_provider_id, required_provider_kind, appointment_id)"
            " values ('prescription', %s, %s, %s, 'counselor', %s)",
            [world.patient, world.doctor.provider, world.counselor.provider, appointment],
        )
    with raises_sqlstate("CH007", "always fulfilled by a pharmacy"):
        conn.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id, primary_provider_id,"
            " required_provider_kind) values ('prescription', %s, %s, 'counselor')",
            [world.patient, world.doctor.provider],
        )
    # Leaving it out, or sending the right kind, works.
    with as_user(conn, world.patient) as c:
        kinds = [
            c.execute(
                "insert into public.healthcare_tickets (ticket_type, patient_id"
                + (
                    ", required_provider_kind) values ('consultation', %s, 'doctor')"
                    if given
                    else ") values ('consultation', %s)"
                )
                + " returning required_provider_kind",
                [world.patient],
            ).fetchone()
            for given in (False, True)
        ]
    assert kinds == [("doctor",), ("doctor",)]


def test_ticket_ids_are_not_chosen_by_clients(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    existing = ticket_at(conn, world, "consultation")
    for chosen in (existing, uuid.uuid4()):
        with as_user(conn, world.patient) as c, raises_sqlstate("42501"):
            c.execute(
                "insert into public.healthcare_tickets (id, ticket_type, patient_id)"
                " values (%s, 'consultation', %s)",
                [chosen, world.patient],
            )


def prescription_ticket(
    conn: psycopg.Connection,
    user: uuid.UUID,
    world: World,
    appointment: uuid.UUID | None,
    requester: uuid.UUID,
    pharmacy: uuid.UUID,
) -> uuid.UUID:
    with as_user(conn, user) as c:
        row = c.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id, primary_provider_id,"
            " secondary_provider_id, appointment_id) values ('prescription', %s, %s, %s, %s)"
            " returning id",
            [world.patient, requester, pharmacy, appointment],
        ).fetchone()
    assert row is not None
    return row[0]


def test_nobody_plants_a_ticket_on_another_practices_appointment(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    victim_appointment = make_reservation(conn, world.doctor.owner, world.patient)
    # The attacker practice has a care relationship with the patient (its own reservation).
    make_reservation(conn, world.gp.owner, world.patient)
    for appointment in (victim_appointment, uuid.uuid4()):
        with raises_sqlstate("CH008", "not a reservation of this patient"):
            prescription_ticket(
                conn,
                world.gp.owner,
                world,
                appointment,
                world.gp.provider,
                world.other_pharmacy.provider,
            )
    # The system is held to it too.
    with raises_sqlstate("CH008", "not a reservation of this patient"):
        conn.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id, primary_provider_id,"
            " appointment_id) values ('prescription', %s, %s, %s)",
            [world.other_patient, world.doctor.provider, victim_appointment],
        )
    # The victim's own call gets their own ticket for that pharmacy.
    with as_user(conn, world.doctor.owner) as c:
        row = c.execute(
            "select primary_provider_id, secondary_provider_id"
            " from public.get_or_create_prescription_ticket(%s, %s)",
            [victim_appointment, world.other_pharmacy.provider],
        ).fetchone()
    assert row == (world.doctor.provider, world.other_pharmacy.provider)


def test_an_appointment_names_one_message_whether_missing_or_someone_elses(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    victim_appointment = make_reservation(conn, world.doctor.owner, world.patient)
    make_reservation(conn, world.gp.owner, world.patient)
    answers = []
    for appointment in (victim_appointment, uuid.uuid4()):
        try:
            prescription_ticket(
                conn,
                world.gp.owner,
                world,
                appointment,
                world.gp.provider,
                world.other_pharmacy.provider,
            )
        except psycopg.Error as exc:
            answers.append((exc.sqlstate, str(exc).replace(str(appointment), "<id>")))
    assert len(answers) == 2
    assert answers[0] == answers[1]
    assert answers[0][0] == "CH008"


def test_a_prescription_ticket_opened_through_the_api_needs_its_appointment(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    make_reservation(conn, world.doctor.owner, world.patient)
    with raises_sqlstate("CH008", "belongs to an appointment"):
        prescription_ticket(
            conn, world.doctor.staff, world, None, world.doctor.provider, world.pharmacy.provider
        )
    appointment = make_reservation(conn, world.doctor.owner, world.patient)
    prescription_ticket(
        conn,
        world.doctor.staff,
        world,
        appointment,
        world.doctor.provider,
        world.pharmacy.provider,
    )


def test_fulfiller_scheduled_types_may_hang_off_the_fulfillers_appointment(
    conn: psycopg.Connection,
) -> None:
    world = make_world(conn)
    gp_appointment = make_reservation(conn, world.gp.owner, world.patient)
    with as_user(conn, world.patient) as c:
        c.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id,"
            " secondary_provider_id, appointment_id) values ('consultation', %s, %s, %s)",
            [world.patient, world.gp.provider, gp_appointment],
        )
    # Not with another patient's appointment.
    other = make_reservation(conn, world.gp.owner, world.other_patient)
    with as_user(conn, world.patient) as c, raises_sqlstate("CH008", "not a reservation"):
        c.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id,"
            " secondary_provider_id, appointment_id) values ('consultation', %s, %s, %s)",
            [world.patient, world.gp.provider, other],
        )


def test_linking_a_strangers_prescription_reveals_nothing(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    victim_rx = write_prescription(
        conn, world.gp.owner, world.pharmacy.provider, world.other_patient
    )
    ticket = ticket_at(conn, world, "prescription", with_prescription=False)
    answers = []
    for rx in (victim_rx, uuid.uuid4()):
        try:
            with as_user(conn, world.doctor.owner) as c:
                c.execute(
                    "update public.healthcare_tickets set prescription_id = %s where id = %s",
                    [rx, ticket],
                )
        except psycopg.Error as exc:
            answers.append((exc.sqlstate, str(exc).replace(str(rx), "<id>")))
    assert len(answers) == 2
    assert answers[0] == answers[1]
    assert answers[0][0] == "CH008"
    assert "patient" not in answers[0][1]
    # A stranger inserting with it gets the policy's refusal, nothing about the prescription.
    with (
        as_user(conn, world.other_pharmacy.staff) as c,
        raises_sqlstate("42501", "row-level security"),
    ):
        c.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id, primary_provider_id,"
            " prescription_id) values ('prescription', %s, %s, %s)",
            [world.other_patient, world.gp.provider, victim_rx],
        )


def test_the_system_opens_any_ticket_for_any_patient(conn: psycopg.Connection) -> None:
    """Backfill and service: no opener or care-relationship rule, the appointment rule holds."""
    world = make_world(conn)
    pharmacy = create_provider(conn, "pharmacy")
    ticket = ticket_at(conn, world, "referral", primary_provider_id=pharmacy)
    set_status(conn, ticket, "sent")


def test_changing_the_fulfiller_rechecks_the_appointment(conn: psycopg.Connection) -> None:
    world = make_world(conn)
    gp_appointment = make_reservation(conn, world.gp.owner, world.patient)
    with as_user(conn, world.patient) as c:
        row = c.execute(
            "insert into public.healthcare_tickets (ticket_type, patient_id,"
            " secondary_provider_id, appointment_id) values ('consultation', %s, %s, %s)"
            " returning id",
            [world.patient, world.gp.provider, gp_appointment],
        ).fetchone()
    assert row is not None
    # The appointment is the GP's: the consultation cannot be moved to another practice with it.
    with as_user(conn, world.patient) as c, raises_sqlstate("CH008", "not a reservation"):
        c.execute(
            "update public.healthcare_tickets set secondary_provider_id = %s where id = %s",
            [world.doctor.provider, row[0]],
        )
