"""A stopped backfill (killed, interrupted, its connection lost) continues where it stopped
when started again, and ends as an uninterrupted run would."""

from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest

from app.backfill import BackfillError
from app.backfill.generate import generate_legacy_threads
from tests.backfill.factories import backfill
from tests.helpers import CarehubProcess, TestDatabase


def start(database: TestDatabase, *args: str) -> CarehubProcess:
    env = {**os.environ, "DATABASE_URL": database.url}
    return CarehubProcess(
        "backfill", "threads", "--progress-every", "1", "--batch-size", "40", *args, env=env
    )


def wait_for(condition, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def expected_outcome(conn: psycopg.Connection, database: TestDatabase) -> tuple[int, int]:
    dry, _ = backfill(database.url, dry_run=True)
    return dry.tickets_created, dry.threads_skipped


def assert_fully_migrated(conn: psycopg.Connection, tickets: int) -> None:
    assert conn.execute(
        "select count(*), count(distinct legacy_thread_id) from public.healthcare_tickets"
    ).fetchone() == (tickets, tickets)
    # Each ticket has exactly its legacy thread, and one timeline row.
    assert conn.execute(
        "select count(*) from public.healthcare_tickets as t"
        " where (select count(*) from public.chat_threads th where th.ticket_id = t.id) <> 1"
        " or (select count(*) from public.ticket_timeline tl where tl.ticket_id = t.id) <> 1"
    ).fetchone() == (0,)
    assert conn.execute(
        "select count(*) from private.backfill_runs where status = 'running'"
    ).fetchone() == (0,)


def test_resume_after_a_kill_between_batches(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    generate_legacy_threads(conn, 400)
    tickets, skipped = expected_outcome(conn, database)
    process = start(database, "--pause-ms", "1500")
    process.wait_for_line("batch 2:")
    assert process.stop(signal.SIGKILL) == -signal.SIGKILL
    done = conn.execute(
        "select batches, tickets_created from private.backfill_runs where status = 'running'"
    ).fetchone()
    assert done is not None
    assert 2 <= done[0] < 10

    summary, output = backfill(database.url, batch_size=40)

    assert "resuming run" in output
    assert summary.finished
    assert summary.tickets_created == tickets - done[1]
    assert_fully_migrated(conn, tickets)
    assert sum(summary.reasons.values()) == skipped


def test_resume_after_ctrl_c_in_the_middle_of_a_batch(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    generate_legacy_threads(conn, 400)
    tickets, _ = expected_outcome(conn, database)
    # A frontend holds a row the third batch writes: the batch waits on it.
    ids = [
        r[0]
        for r in conn.execute(
            "select p.thread_id from private.backfill_thread_plan(array("
            " select id from public.chat_threads where ticket_id is null)) as p"
            " where p.action = 'create' order by p.thread_id"
        )
    ]
    blocker = database.connect(autocommit=False)
    blocker.execute("select 1 from public.chat_threads where id = %s for update", [ids[100]])
    process = start(
        database, "--pause-ms", "0", "--lock-timeout", "60s", "--statement-timeout", "60s"
    )
    wait_for(
        lambda: (
            conn.execute(
                "select count(*) from pg_stat_activity where application_name = 'carehub-backfill'"
                " and wait_event_type = 'Lock'"
            ).fetchone()
            == (1,)
        )
    )
    committed = conn.execute("select batches from private.backfill_runs").fetchone()

    assert process.stop(signal.SIGINT) == 130
    assert "interrupted" in process.output
    blocker.rollback()
    # The interrupted batch left nothing: the run still counts the batches before it.
    assert conn.execute("select batches from private.backfill_runs").fetchone() == committed
    assert conn.execute(
        "select count(*) from public.chat_threads where id = %s and ticket_id is not null",
        [ids[100]],
    ).fetchone() == (0,)

    summary, _ = backfill(database.url, batch_size=40)

    assert summary.finished
    assert_fully_migrated(conn, tickets)


def test_resume_after_the_connection_is_lost_in_the_middle_of_a_batch(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    generate_legacy_threads(conn, 300)
    tickets, _ = expected_outcome(conn, database)
    ids = [
        r[0]
        for r in conn.execute(
            "select p.thread_id from private.backfill_thread_plan(array("
            " select id from public.chat_threads where ticket_id is null)) as p"
            " where p.action = 'create' order by p.thread_id"
        )
    ]
    blocker = database.connect(autocommit=False)
    blocker.execute("select 1 from public.chat_threads where id = %s for update", [ids[50]])
    process = start(
        database, "--pause-ms", "0", "--lock-timeout", "60s", "--statement-timeout", "60s"
    )
    wait_for(
        lambda: (
            conn.execute(
                "select count(*) from pg_stat_activity where application_name = 'carehub-backfill'"
                " and wait_event_type = 'Lock'"
            ).fetchone()
            == (1,)
        )
    )
    conn.execute(
        "select pg_terminate_backend(pid) from pg_stat_activity"
        " where application_name = 'carehub-backfill'"
    )
    assert process.process.wait(timeout=60) == 1
    assert "run again to resume" in process.output
    assert "Traceback" not in process.output
    blocker.rollback()

    summary, _ = backfill(database.url, batch_size=40)

    assert summary.finished
    assert_fully_migrated(conn, tickets)


def test_a_batch_that_keeps_timing_out_is_retried_smaller_then_given_up_clearly(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    generate_legacy_threads(conn, 100)
    created = [
        r[0]
        for r in conn.execute(
            "select p.thread_id from private.backfill_thread_plan(array("
            " select id from public.chat_threads where ticket_id is null)) as p"
            " where p.action = 'create' order by p.thread_id"
        )
    ]
    blocker = database.connect(autocommit=False)
    blocker.execute("select 1 from public.chat_threads where id = %s for update", [created[0]])

    with pytest.raises(BackfillError, match=r"failed 3 times .*giving up"):
        backfill(database.url, lock_timeout_ms=100, max_retries=2)
    # Nothing of the failing batch was written; the run stays open to resume.
    assert conn.execute("select count(*) from public.healthcare_tickets").fetchone() == (0,)

    blocker.rollback()
    summary, _ = backfill(database.url)
    assert summary.finished
    assert summary.tickets_created == len(created)
    # The same run went on (it had no committed batch yet, so nothing to say it resumed).
    assert conn.execute("select count(*) from private.backfill_runs").fetchone() == (1,)
