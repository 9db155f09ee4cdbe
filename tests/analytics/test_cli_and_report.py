"""`carehub analytics recompute|export|report`: what operators run, with clear errors, and the
HTML report (well-formed, self-contained, holding the report function's numbers)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from app.analytics_export import FULFILLMENT_COLUMNS, OPERATIONS_COLUMNS, csv_text
from app.analytics_report import TABLE_COLUMNS, raw
from app.cli import main
from app.localdb import free_port
from tests.analytics.factories import add_prescription, create_pharmacy, refresh
from tests.helpers import TestDatabase

NY = "America/New_York"


@pytest.fixture
def filled(conn: psycopg.Connection) -> psycopg.Connection:
    first, _ = create_pharmacy(conn, NY, "Chelsea <Apothecary> & Co")
    second, _ = create_pharmacy(conn, "Europe/Berlin")
    for pharmacy, zone in ((first, NY), (second, "Europe/Berlin")):
        for day in (5, 12, 19):
            add_prescription(
                conn,
                pharmacy,
                zone,
                sent_at=f"2026-10-{day:02d} 09:00",
                received_at=f"2026-10-{day:02d} 10:00",
                processing_at=f"2026-10-{day:02d} 13:00",
                shipped_at=f"2026-10-{day + 1:02d} 09:00",
                delivered_at=f"2026-10-{day + 2:02d} 09:00",
                estimated_delivery=f"2026-10-{day + 2:02d} 08:00"
                if day == 12
                else f"2026-10-{day + 3:02d} 08:00",
            )
    refresh(conn)
    return conn


def run(database: TestDatabase, *args: str):
    return CliRunner().invoke(main, list(args), env={"DATABASE_URL": database.url})


def test_export_writes_the_report_function_rows_as_csv(database, filled, tmp_path: Path) -> None:
    out = tmp_path / "export.csv"
    result = run(
        database,
        "analytics",
        "export",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--grain",
        "week",
        "--csv",
        str(out),
    )
    assert result.exit_code == 0, result.output
    rows = filled.execute(
        f"select {', '.join(FULFILLMENT_COLUMNS)} from public.fulfillment_report("
        "'2026-10-01', '2026-10-31', 'week')"
    ).fetchall()
    assert out.read_bytes().decode("utf-8") == csv_text(FULFILLMENT_COLUMNS, rows)
    assert len(rows) > 6


def test_export_of_the_operations_report_to_stdout(database, filled) -> None:
    result = run(
        database,
        "analytics",
        "export",
        "--from",
        "2026-10-01",
        "--to",
        "2026-12-31",
        "--report",
        "operations",
        "--csv",
        "-",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.startswith((",".join(OPERATIONS_COLUMNS) + "\r\n").encode())


def test_recompute_reports_what_it_wrote(database, filled) -> None:
    result = run(database, "analytics", "recompute", "--from", "2026-10-01", "--to", "2026-10-10")
    assert result.exit_code == 0, result.output
    assert re.search(r"recomputed every pharmacy and the network .* \d+ rollup rows", result.output)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["recompute", "--from", "yesterday"], "is not a date YYYY-MM-DD"),
        (["recompute", "--from", "2026-10-10", "--to", "2026-10-01"], "is after --to"),
        (["recompute", "--pharmacy", "nope"], "is not a pharmacy id"),
        (["export", "--from", "2026-10-01", "--to", "2026-10-31"], "Missing option '--csv'"),
        (
            [
                "export",
                "--from",
                "2026-10-01",
                "--to",
                "2026-10-31",
                "--grain",
                "year",
                "--csv",
                "-",
            ],
            "Invalid value for '--grain'",
        ),
    ],
)
def test_bad_arguments_are_named_without_a_traceback(database, args, message) -> None:
    result = run(database, "analytics", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_database_is_a_clear_error() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    result = CliRunner().invoke(main, ["analytics", "recompute"], env={"DATABASE_URL": url})
    assert result.exit_code == 1
    assert "cannot reach the database" in result.output


def test_an_unwritable_output_is_a_clear_error(database, filled, tmp_path: Path) -> None:
    result = run(
        database,
        "analytics",
        "report",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--out",
        str(tmp_path / "missing" / "report.html"),
    )
    assert result.exit_code == 1
    assert "cannot write" in result.output


def test_the_report_is_well_formed_self_contained_and_holds_the_numbers(
    database, filled, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = run(
        database,
        "analytics",
        "report",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    root = ET.fromstring(text.split("\n", 1)[1])  # noqa: S314 (our own file) well-formed XML
    ns = {"h": "http://www.w3.org/1999/xhtml", "svg": "http://www.w3.org/2000/svg"}
    assert len(root.findall(".//svg:svg", ns)) == 2
    # Self-contained: nothing is loaded from elsewhere (namespace names are not fetched).
    assert not re.search(r"""(src|href)=["'](https?:)?//""", text)
    assert "<script" not in text
    assert "Chelsea &lt;Apothecary&gt; &amp; Co" in text
    # Every cell holds the report function's value for the same period.
    rows = filled.execute(
        f"select {', '.join(FULFILLMENT_COLUMNS)} from public.fulfillment_report("
        "'2026-10-01', '2026-10-31', 'week')"
    ).fetchall()
    expected = {
        (str(r[0] or ""), raw(r[2])): {
            c: raw(r[FULFILLMENT_COLUMNS.index(c)]) for c, _ in TABLE_COLUMNS
        }
        for r in rows
    }
    table_rows = root.findall(".//h:tbody/h:tr", ns)
    assert len(table_rows) == len(rows)
    for tr in table_rows:
        cells = {td.get("data-column"): td.get("data-value") for td in tr.findall("h:td", ns)}
        assert cells == expected[(tr.get("data-pharmacy-id"), cells["period_start"])]


def test_a_report_of_a_quiet_period_says_so(database, filled, tmp_path: Path) -> None:
    out = tmp_path / "quiet.html"
    result = run(
        database,
        "analytics",
        "report",
        "--from",
        "2025-01-01",
        "--to",
        "2025-01-31",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "No activity in this period." in out.read_text()
