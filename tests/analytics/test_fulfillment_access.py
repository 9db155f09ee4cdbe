"""Who reads fulfilment rollups and fulfillment_report: a pharmacy's members their pharmacy,
admins every pharmacy and the network, nobody else anything."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from tests.analytics.factories import add_prescription, create_pharmacy, refresh
from tests.helpers import add_member, as_anon, as_user, create_user

UTC = "UTC"


@pytest.fixture
def two_pharmacies(conn: psycopg.Connection) -> dict[str, object]:
    first, first_owner = create_pharmacy(conn, UTC)
    second, _second_owner = create_pharmacy(conn, UTC)
    staff = create_user(conn, "pharmacist")
    add_member(conn, first, staff, "staff")
    for pharmacy in (first, second):
        add_prescription(
            conn,
            pharmacy,
            UTC,
            sent_at="2026-10-05 09:00",
            received_at="2026-10-05 10:00",
            processing_at="2026-10-05 12:00",
        )
    refresh(conn)
    return {
        "first": first,
        "first_owner": first_owner,
        "staff": staff,
        "second": second,
        "admin": create_user(conn, "admin"),
        "patient": create_user(conn, "patient"),
    }


def table_pharmacies(conn: psycopg.Connection, user) -> set:
    with as_user(conn, user) as c:
        return {r[0] for r in c.execute("select pharmacy_id from public.fulfillment_analytics")}


def report_pharmacies(conn: psycopg.Connection, user, pharmacy=None) -> set:
    with as_user(conn, user) as c:
        return {
            r[0]
            for r in c.execute(
                "select pharmacy_id from public.fulfillment_report(%s, %s, 'week', %s)",
                [date(2026, 10, 1), date(2026, 10, 31), pharmacy],
            )
        }


def test_members_read_their_pharmacy_rows_only(conn, two_pharmacies) -> None:
    w = two_pharmacies
    for member in (w["first_owner"], w["staff"]):
        assert table_pharmacies(conn, member) == {w["first"]}
        assert report_pharmacies(conn, member) == {w["first"]}
        assert report_pharmacies(conn, member, w["first"]) == {w["first"]}


def test_admins_read_every_pharmacy_and_the_network(conn, two_pharmacies) -> None:
    w = two_pharmacies
    assert table_pharmacies(conn, w["admin"]) == {w["first"], w["second"], None}
    assert report_pharmacies(conn, w["admin"]) == {w["first"], w["second"], None}
    # One pharmacy beside the network median.
    assert report_pharmacies(conn, w["admin"], w["second"]) == {w["second"], None}


def test_other_users_read_nothing(conn, two_pharmacies) -> None:
    assert table_pharmacies(conn, two_pharmacies["patient"]) == set()
    assert report_pharmacies(conn, two_pharmacies["patient"]) == set()


def test_asking_for_another_pharmacy_is_refused(conn, two_pharmacies) -> None:
    w = two_pharmacies
    with pytest.raises(psycopg.Error) as refused:
        report_pharmacies(conn, w["staff"], w["second"])
    assert refused.value.sqlstate == "CH008"


def test_anon_may_not_read_rollups_or_call_the_report(conn, two_pharmacies) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_anon(conn) as c:
        c.execute("select * from public.fulfillment_analytics")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_anon(conn) as c:
        c.execute("select * from public.fulfillment_report('2026-10-01', '2026-10-31')")


def test_nobody_signed_in_writes_rollups(conn, two_pharmacies) -> None:
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        as_user(conn, two_pharmacies["admin"]) as c,
    ):
        c.execute("delete from public.fulfillment_analytics")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("2026-10-01", "2026-10-31", "year"), "grain must be day, week or month"),
        (("2026-10-31", "2026-10-01", "day"), "from <= to"),
    ],
)
def test_the_report_refuses_a_bad_grain_or_range(conn, two_pharmacies, args, message) -> None:
    with (
        pytest.raises(psycopg.errors.InvalidParameterValue, match=message),
        as_user(conn, two_pharmacies["admin"]) as c,
    ):
        c.execute("select * from public.fulfillment_report(%s, %s, %s)", list(args))


def test_the_report_includes_periods_overlapping_the_range(conn, two_pharmacies) -> None:
    # The week of Monday 2026-10-05 overlaps a range starting on Wednesday 10-07.
    with as_user(conn, two_pharmacies["admin"]) as c:
        rows = c.execute(
            "select period_start from public.fulfillment_report('2026-10-07', '2026-10-07',"
            " 'week', %s)",
            [two_pharmacies["first"]],
        ).fetchall()
    assert {r[0] for r in rows} == {date(2026, 10, 5)}
