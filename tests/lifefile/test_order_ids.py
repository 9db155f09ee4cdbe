"""A Lifefile order belongs to exactly one prescription (access issue, rule 3): attacks by a
doctor on another doctor's order, the write-once rule, and processing refusing ambiguous
matches."""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.helpers import MIGRATIONS, as_user, run_together
from tests.lifefile.factories import (
    create_prescription_ticket,
    data_push_element,
    event,
    process_all,
    ticket_status,
)
from tests.lifefile.test_processing import event_status, receive


def set_ids(conn: psycopg.Connection, prescription_id, **ids: str | None) -> None:
    assignments = ", ".join(f"{name} = %({name})s" for name in ids)
    conn.execute(
        f"update public.prescriptions set {assignments} where id = %(id)s",
        {**ids, "id": prescription_id},
    )


def last_error(conn: psycopg.Connection, event_id) -> str:
    row = conn.execute(
        "select last_error from private.lifefile_webhook_events where id = %s", [event_id]
    ).fetchone()
    assert row is not None
    return row[0]


def test_doctor_cannot_write_another_doctors_order_id_on_their_sent_prescription(
    conn: psycopg.Connection,
) -> None:
    victim = create_prescription_ticket(conn, order_id="LF-VICTIM", rx_number="RX-V")
    attacker = create_prescription_ticket(conn)
    with (
        pytest.raises(psycopg.errors.UniqueViolation, match="Lifefile external order id"),
        as_user(conn, attacker.doctor) as c,
    ):
        set_ids(c, attacker.prescription_id, external_order_id="LF-VICTIM")
    # The victim's events still reach the victim.
    [event_id] = receive(conn, event("SHIPPED", order_id="LF-VICTIM"))
    process_all(conn)
    assert event_status(conn, event_id) == "processed"
    assert ticket_status(conn, victim.ticket_id) == "shipped"
    assert ticket_status(conn, attacker.ticket_id) == "sent"


def test_rx_number_is_unique_per_pharmacy_among_live_prescriptions(
    conn: psycopg.Connection,
) -> None:
    victim = create_prescription_ticket(conn, rx_number="RX-1")
    other = create_prescription_ticket(conn)
    # The same rx number at another pharmacy is another order.
    set_ids(conn, other.prescription_id, rx_number="RX-1")
    # At the same pharmacy it is refused, for the system too.
    same = create_prescription_ticket(conn, send=False)
    conn.execute(
        "update public.prescriptions set pharmacy_id = %s where id = %s",
        [victim.pharmacy, same.prescription_id],
    )
    conn.execute(
        "update public.healthcare_tickets set secondary_provider_id = %s, status = 'sent'"
        " where id = %s",
        [victim.pharmacy, same.ticket_id],
    )
    with pytest.raises(psycopg.errors.UniqueViolation, match="rx number"):
        set_ids(conn, same.prescription_id, rx_number="RX-1")


def test_doctor_sets_each_id_once_while_empty_then_only_the_system_changes_it(
    conn: psycopg.Connection,
) -> None:
    ticket = create_prescription_ticket(conn)
    with as_user(conn, ticket.doctor) as c:
        set_ids(c, ticket.prescription_id, external_order_id="LF-1", rx_number="RX-1")
    for column, value in (("external_order_id", "LF-2"), ("rx_number", None)):
        with (
            pytest.raises(psycopg.Error, match="CH007") as caught,
            as_user(conn, ticket.doctor) as c,
        ):
            set_ids(c, ticket.prescription_id, **{column: value})
        assert caught.value.sqlstate == "CH007"
    set_ids(conn, ticket.prescription_id, external_order_id="LF-2")  # the integration
    row = conn.execute(
        "select external_order_id from public.prescription_tracking where ticket_id = %s",
        [ticket.ticket_id],
    ).fetchone()
    assert row == ("LF-2",)


def test_a_cancelled_tickets_order_id_may_be_taken_by_a_live_prescription(
    conn: psycopg.Connection,
) -> None:
    old = create_prescription_ticket(conn, order_id="LF-REUSED")
    conn.execute(
        "update public.healthcare_tickets set status = 'cancelled' where id = %s", [old.ticket_id]
    )
    new = create_prescription_ticket(conn)
    set_ids(conn, new.prescription_id, external_order_id="LF-REUSED")
    # The live one gets the order's events.
    receive(conn, event("RECEIVED", order_id="LF-REUSED"))
    process_all(conn)
    assert ticket_status(conn, new.ticket_id) == "received"


def test_linking_a_prescription_whose_order_id_is_live_elsewhere_is_refused(
    conn: psycopg.Connection,
) -> None:
    create_prescription_ticket(conn, order_id="LF-TAKEN")
    with pytest.raises(psycopg.errors.UniqueViolation, match="another live prescription"):
        create_prescription_ticket(conn, order_id="LF-TAKEN", send=False)


def test_concurrent_writes_of_one_order_id_let_exactly_one_win(database, conn) -> None:
    tickets = [create_prescription_ticket(conn) for _ in range(8)]
    connections = [database.connect() for _ in tickets]

    def claim(index: int) -> str:
        set_ids(connections[index], tickets[index].prescription_id, external_order_id="LF-RACE")
        return "ok"

    results = run_together(len(tickets), claim)
    assert results.count("ok") == 1
    assert all(isinstance(r, psycopg.errors.UniqueViolation) for r in results if r != "ok")


def test_event_whose_order_id_and_rx_number_name_different_prescriptions_stays_unmatched(
    conn: psycopg.Connection,
) -> None:
    by_order = create_prescription_ticket(conn, order_id="LF-A")
    by_rx = create_prescription_ticket(conn, rx_number="RX-B")
    [event_id] = receive(conn, event("SHIPPED", order_id="LF-A", rx_number="RX-B"))
    process_all(conn)
    assert event_status(conn, event_id) == "unmatched"
    assert "ambiguous" in last_error(conn, event_id)
    assert "LF-A" in last_error(conn, event_id)
    assert "RX-B" in last_error(conn, event_id)
    assert ticket_status(conn, by_order.ticket_id) == "sent"
    assert ticket_status(conn, by_rx.ticket_id) == "sent"


def test_rx_number_naming_several_prescriptions_without_an_order_id_stays_unmatched(
    conn: psycopg.Connection,
) -> None:
    first = create_prescription_ticket(conn, rx_number="RX-SHARED")
    second = create_prescription_ticket(conn, rx_number="RX-SHARED")  # another pharmacy
    [event_id] = receive(conn, data_push_element("Fulfillment", rx_number="RX-SHARED"))
    process_all(conn)
    assert event_status(conn, event_id) == "unmatched"
    assert re.search(r"rx number RX-SHARED names 2 prescriptions", last_error(conn, event_id))
    assert {ticket_status(conn, t.ticket_id) for t in (first, second)} == {"sent"}
    # Lifefile's order id tells them apart.
    set_ids(conn, second.prescription_id, external_order_id="LF-SECOND")
    [event_id] = receive(
        conn, data_push_element("Fulfillment", rx_number="RX-SHARED", order_id="LF-SECOND")
    )
    process_all(conn)
    assert event_status(conn, event_id) == "processed"
    assert ticket_status(conn, second.ticket_id) == "processing"


def test_order_reference_naming_our_prescription_wins(conn: psycopg.Connection) -> None:
    ours = create_prescription_ticket(conn)
    create_prescription_ticket(conn, order_id="LF-OTHER")
    [event_id] = receive(
        conn,
        data_push_element(
            "Fulfillment", order_id="LF-OTHER", orderReferenceId=str(ours.prescription_id)
        ),
    )
    process_all(conn)
    assert event_status(conn, event_id) == "processed"
    assert ticket_status(conn, ours.ticket_id) == "processing"


def test_migration_names_existing_duplicates_and_how_to_resolve_them(
    conn: psycopg.Connection,
) -> None:
    conn.execute("alter table public.prescriptions disable trigger guard_prescription_lifefile_ids")
    conn.execute(
        "alter table public.healthcare_tickets"
        " disable trigger check_linked_prescription_lifefile_ids"
    )
    first = create_prescription_ticket(conn, order_id="LF-DUP")
    second = create_prescription_ticket(conn, order_id="LF-DUP")
    text = (MIGRATIONS / "20261201130100_prescription_order_ids.sql").read_text()
    check = text[text.index("do $check$") : text.index("$check$;") + len("$check$;")]
    with pytest.raises(psycopg.errors.UniqueViolation) as caught:
        conn.execute(check)
    message = str(caught.value)
    assert "Lifefile order LF-DUP" in message
    assert str(first.prescription_id) in message
    assert str(second.prescription_id) in message
    assert "set it to null on the others" in (caught.value.diag.message_hint or "")


def test_an_event_never_copies_an_id_another_prescription_holds(conn: psycopg.Connection) -> None:
    ours = create_prescription_ticket(conn)
    theirs = create_prescription_ticket(conn, order_id="LF-THEIRS")
    receive(
        conn,
        data_push_element(
            "Fulfillment", order_id="LF-THEIRS", orderReferenceId=str(ours.prescription_id)
        ),
    )
    process_all(conn)
    row = conn.execute(
        "select external_order_id from public.prescription_tracking where ticket_id = %s",
        [ours.ticket_id],
    ).fetchone()
    assert row == (None,)
    # Their own events still find them alone.
    [event_id] = receive(conn, event("SHIPPED", order_id="LF-THEIRS"))
    process_all(conn)
    assert event_status(conn, event_id) == "processed"
    assert ticket_status(conn, theirs.ticket_id) == "shipped"
