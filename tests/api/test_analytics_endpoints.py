"""GET /api/pharmacy/analytics (JSON and CSV) and /api/operations/analytics as the signed-in
user, and the unauthenticated freshness endpoint."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import psycopg
import pytest
from flask import Flask

from app.analytics_export import FULFILLMENT_COLUMNS, OPERATIONS_COLUMNS, csv_text, json_rows
from tests.analytics.factories import add_prescription, create_pharmacy, refresh
from tests.api.jwt_double import hs256_token
from tests.helpers import as_user, create_user

UTC = "UTC"
QUERY = "from=2026-10-01&to=2026-10-31&grain=week"


@pytest.fixture
def pharmacies(conn: psycopg.Connection) -> dict[str, object]:
    first, first_owner = create_pharmacy(conn, UTC, 'Green "Cross", Main St')
    second, _second_owner = create_pharmacy(conn, UTC)
    for pharmacy in (first, second):
        add_prescription(
            conn,
            pharmacy,
            UTC,
            sent_at="2026-10-05 09:00",
            received_at="2026-10-05 10:00",
            processing_at="2026-10-05 12:30",
            shipped_at="2026-10-06 09:00",
        )
    refresh(conn)
    return {
        "first": first,
        "first_owner": first_owner,
        "second": second,
        "admin": create_user(conn, "admin"),
        "patient": create_user(conn, "patient"),
    }


def get(app: Flask, user, path: str):
    return app.test_client().get(path, headers={"Authorization": f"Bearer {hs256_token(user)}"})


def report_as(conn, user, pharmacy=None) -> list[dict]:
    with as_user(conn, user) as c:
        rows = c.execute(
            f"select {', '.join(FULFILLMENT_COLUMNS)} from public.fulfillment_report("
            "'2026-10-01', '2026-10-31', 'week', %s)",
            [pharmacy],
        ).fetchall()
    return json_rows(FULFILLMENT_COLUMNS, rows)


@pytest.mark.parametrize("who", ["first_owner", "admin", "patient"])
def test_json_rows_are_what_the_report_function_gives_the_same_user(
    app, conn, pharmacies, who
) -> None:
    response = get(app, pharmacies[who], f"/api/pharmacy/analytics?{QUERY}")
    assert response.status_code == 200
    assert response.get_json()["rows"] == report_as(conn, pharmacies[who])


def test_json_uses_iso_dates_and_seconds(app, pharmacies) -> None:
    response = get(app, pharmacies["first_owner"], f"/api/pharmacy/analytics?{QUERY}")
    (row,) = response.get_json()["rows"]
    assert row["pharmacy_id"] == str(pharmacies["first"])
    assert row["period_start"] == "2026-10-05"
    assert row["processing_p50"] == 2.5 * 3600
    assert row["same_day_shipment_rate"] == 0.0
    assert row["next_day_shipment_rate"] == 1.0
    assert row["on_time_rate"] is None
    assert list(row) == list(FULFILLMENT_COLUMNS)


def test_csv_is_rfc_4180_with_a_header_and_empty_nulls(app, pharmacies) -> None:
    response = get(app, pharmacies["admin"], f"/api/pharmacy/analytics?{QUERY}&format=csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv; charset=utf-8")
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="fulfillment-analytics-2026-10-01-2026-10-31-week.csv"'
    )
    text = response.get_data().decode("utf-8")
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == FULFILLMENT_COLUMNS
    assert len(rows) == 1 + 3  # two pharmacies and the network
    network = next(r for r in rows[1:] if r[0] == "")
    record = dict(zip(FULFILLMENT_COLUMNS, network, strict=True))
    assert record["processing_p50"] == "9000"
    assert record["on_time_rate"] == ""
    assert record["sent_count"] == "2"


def test_csv_fields_are_quoted_and_escaped() -> None:
    text = csv_text(
        ("a", "b", "c", "d"),
        [('say "hi", ok', "line\nbreak", None, timedelta(seconds=1.5))],
    )
    assert text == 'a,b,c,d\r\n"say ""hi"", ok","line\nbreak",,1.5\r\n'


def test_asking_for_a_pharmacy_the_user_does_not_act_for_is_403(app, pharmacies) -> None:
    response = get(
        app,
        pharmacies["first_owner"],
        f"/api/pharmacy/analytics?{QUERY}&pharmacy_id={pharmacies['second']}",
    )
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"


@pytest.mark.parametrize(
    "query",
    [
        "to=2026-10-31",
        "from=2026-10-01",
        "from=x&to=2026-10-31",
        "from=2026-10-31&to=2026-10-01",
        f"{QUERY[:-10]}grain=year",
        f"{QUERY}&format=xml",
        f"{QUERY}&pharmacy_id=42",
    ],
)
def test_bad_parameters_are_400_with_json(app, pharmacies, query) -> None:
    response = get(app, pharmacies["admin"], f"/api/pharmacy/analytics?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_without_a_token_the_analytics_are_401(app, pharmacies) -> None:
    response = app.test_client().get(f"/api/pharmacy/analytics?{QUERY}")
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_status_needs_no_token_and_gives_only_freshness(app, conn, pharmacies) -> None:
    response = app.test_client().get("/api/pharmacy/analytics/status")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"last_recompute_at", "dirty_periods"}
    assert body["dirty_periods"] == 0
    assert body["last_recompute_at"]
    add_prescription(conn, pharmacies["first"], UTC, sent_at="2026-10-20 09:00")
    status = app.test_client().get("/api/pharmacy/analytics/status").get_json()
    # Its day, week and month, and those of the factory's own pharmacy, which it left.
    assert status["dirty_periods"] == 6


def test_operations_analytics_json_and_csv(app, conn, pharmacies) -> None:
    response = get(
        app, pharmacies["admin"], "/api/operations/analytics?from=2026-11-01&to=2026-12-31"
    )
    assert response.status_code == 200
    rows = response.get_json()["rows"]
    assert rows
    assert all(list(r) == list(OPERATIONS_COLUMNS) for r in rows)
    response = get(
        app,
        pharmacies["patient"],
        "/api/operations/analytics?from=2026-11-01&to=2026-12-31&format=csv",
    )
    assert response.get_data().decode() == ",".join(OPERATIONS_COLUMNS) + "\r\n"
