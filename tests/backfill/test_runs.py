"""Whole runs of the backfill: the dry run, the report, a second run, threads created while it
runs, and the command line."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from app.backfill.generate import generate_legacy_threads
from tests.backfill.factories import (
    backfill,
    make_legacy_world,
    read_report,
    standard_thread,
    ticket_of_thread,
)
from tests.helpers import PROJECT_ROOT, TestDatabase


def data_dump(url: str) -> str:
    from app.localdb import find_bin_dir

    result = subprocess.run(
        [str(find_bin_dir() / "pg_dump"), "--data-only", "--no-owner", url],
        capture_output=True,
        text=True,
        check=True,
    )
    return "".join(
        line
        for line in result.stdout.splitlines(keepends=True)
        if not line.startswith(("\\restrict", "\\unrestrict"))
    )


def test_dry_run_reports_what_it_would_do_and_changes_nothing(
    database: TestDatabase, conn: psycopg.Connection, tmp_path: Path
) -> None:
    generated = generate_legacy_threads(conn, 300)
    before = data_dump(database.url)

    summary, _ = backfill(database.url, dry_run=True, batch_size=70, report=tmp_path / "dry.csv")

    assert data_dump(database.url) == before
    assert summary.threads_seen == generated.threads
    assert summary.tickets_created > 0
    assert summary.threads_skipped > 0
    rows = read_report(tmp_path / "dry.csv")
    assert len([r for r in rows if r["reason"] in summary.reasons]) == summary.threads_skipped

    # The real run does what the dry run said.
    real, _ = backfill(database.url, batch_size=70)
    assert (real.tickets_created, real.threads_linked, real.threads_skipped) == (
        summary.tickets_created,
        summary.threads_linked,
        summary.threads_skipped,
    )
    assert real.reasons == summary.reasons


def test_report_lists_every_thread_not_migrated_and_every_warning(
    database: TestDatabase, conn: psycopg.Connection, tmp_path: Path
) -> None:
    generate_legacy_threads(conn, 400)
    report = tmp_path / "report.csv"

    summary, output = backfill(database.url, report=report)

    rows = read_report(report)
    assert list(rows[0]) == ["thread_id", "order_id", "order_type", "reason", "detail"]
    without_ticket = {
        str(r[0])
        for r in conn.execute(
            "select th.id from public.chat_threads as th where th.ticket_id is null and not"
            " exists (select from public.healthcare_tickets t where t.legacy_thread_id = th.id)"
        )
    }
    skipped = {r["thread_id"] for r in rows if r["reason"] in summary.reasons}
    assert skipped == without_ticket
    assert len(skipped) == summary.threads_skipped
    assert all(r["detail"] for r in rows)
    assert {r["reason"] for r in rows} >= {
        "unsupported order type",
        "no patient",
        "ambiguous patient",
        "members removed",
    }
    assert "finished" in output or summary.finished


def test_a_second_run_over_a_migrated_database_does_nothing(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    generate_legacy_threads(conn, 300)
    first, _ = backfill(database.url, batch_size=50)
    assert first.finished
    tickets = conn.execute("select count(*) from public.healthcare_tickets").fetchone()
    timeline = conn.execute("select count(*) from public.ticket_timeline").fetchone()

    second, _ = backfill(database.url, batch_size=50)

    assert second.finished
    assert (second.tickets_created, second.threads_linked) == (0, 0)
    assert conn.execute("select count(*) from public.healthcare_tickets").fetchone() == tickets
    assert conn.execute("select count(*) from public.ticket_timeline").fetchone() == timeline
    # Every ticket is its legacy thread's, once.
    assert conn.execute(
        "select count(*), count(distinct legacy_thread_id) from public.healthcare_tickets"
    ).fetchone() == (tickets[0], tickets[0])  # type: ignore[index]


def test_threads_created_behind_the_cursor_while_the_run_goes_are_migrated(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    for _ in range(6):
        standard_thread(conn, world)
    stopped, _ = backfill(database.url, batch_size=2, max_batches=2)
    assert not stopped.finished
    # A frontend starts a legacy thread whose id sorts before the cursor.
    early = standard_thread(
        conn,
        world,
        thread_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
        created_at=datetime.now(UTC),
    )

    resumed, output = backfill(database.url, batch_size=2)

    assert "resuming run" in output
    assert resumed.finished
    assert ticket_of_thread(conn, early) is not None
    assert conn.execute("select count(*) from public.healthcare_tickets").fetchone() == (7,)


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/migrate_threads_to_tickets.py", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_the_script_runs_from_a_checkout_and_prints_a_summary(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    world = make_legacy_world(conn)
    standard_thread(conn, world)
    standard_thread(conn, world, order_type="lab_order")

    result = run_script("--database-url", database.url, "--pause-ms", "0")

    assert result.returncode == 0, result.stderr
    for line in [
        "threads seen: 2",
        "tickets created: 1",
        "threads skipped: 1",
        "unsupported order type: 1",
        "time taken:",
    ]:
        assert line in result.stdout


def test_command_line_errors_are_one_clear_line(database: TestDatabase) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    cases = [
        ((), "no database given"),
        (("--database-url", database.url, "--lock-timeout", "soon"), "--lock-timeout 'soon'"),
        (("--database-url", "postgresql://nobody@127.0.0.1:1/none"), "cannot connect"),
        (("--database-url", database.url, "--batch-size", "0"), "--batch-size"),
    ]
    for args, expected in cases:
        result = run_script(*args, env=env)
        assert result.returncode != 0
        assert expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    via_carehub = subprocess.run(
        [sys.executable, "-m", "app", "backfill", "threads", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--dry-run" in via_carehub.stdout
