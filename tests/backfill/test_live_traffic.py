"""The backfill on a live database: frontends keep writing messages in the threads being
migrated, doctors call get_or_create_prescription_ticket for the same appointments, pharmacies
move tickets on. No deadlock, no duplicate ticket, no lost message, no long wait."""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

import psycopg

from app.backfill import Options, run
from app.backfill.generate import generate_legacy_threads
from tests.helpers import TestDatabase, as_user

LOCK_TIMEOUT_MS = 2000


class Frontend(threading.Thread):
    """Calls work(conn, rng) in a loop until stopped; records timings and errors."""

    def __init__(self, database: TestDatabase, name: str, work: Any) -> None:
        super().__init__(name=name, daemon=True)
        self.conn = database.connect()
        self.work = work
        self.stop = threading.Event()
        self.durations: list[float] = []
        self.errors: list[str] = []
        self.results: list[Any] = []
        self.rng = random.Random(name)

    def run(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                result = self.work(self.conn, self.rng)
                if result is not None:
                    self.results.append(result)
            except psycopg.Error as exc:
                self.errors.append(exc.sqlstate or str(exc))
            self.durations.append(time.monotonic() - began)


def test_backfill_under_concurrent_frontends(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    generate_legacy_threads(conn, 1200)
    threads = conn.execute(
        "select th.id, m.profile_id from public.chat_threads as th"
        " join public.chat_thread_members as m on m.thread_id = th.id"
        " where th.order_type = 'prescription'"
    ).fetchall()
    appointments = conn.execute(
        "select th.order_id, p.id, th.created_by from public.chat_threads as th"
        " join public.providers as p on p.id::text = th.metadata->>'target_id'"
        " join public.reservation as r on r.id = th.order_id"
        " where p.kind = 'pharmacy'"
    ).fetchall()
    pharmacists = conn.execute(
        "select m.profile_id, m.provider_id from public.provider_members as m"
        " join public.providers as p on p.id = m.provider_id where p.kind = 'pharmacy'"
    ).fetchall()

    def post_message(c: psycopg.Connection, rng: random.Random) -> Any:
        thread, sender = rng.choice(threads)
        body = f"live {uuid.uuid4()}"
        try:
            with as_user(c, sender):
                c.execute(
                    "insert into public.chat_messages (thread_id, body) values (%s, %s)",
                    [thread, body],
                )
        except psycopg.Error as exc:
            # The thread became a draft ticket's (CH004) or the sender is no party (42501):
            # refused, not lost.
            if exc.sqlstate in ("CH004", "42501"):
                return None
            raise
        return (thread, body)

    def get_or_create(c: psycopg.Connection, rng: random.Random) -> Any:
        appointment, pharmacy, doctor = rng.choice(appointments)
        with as_user(c, doctor):
            row = c.execute(
                "select id from public.get_or_create_prescription_ticket(%s, %s)",
                [appointment, pharmacy],
            ).fetchone()
        return row

    def pharmacy_moves_on(c: psycopg.Connection, rng: random.Random) -> Any:
        pharmacist, pharmacy = rng.choice(pharmacists)
        with as_user(c, pharmacist):
            row = c.execute(
                "update public.healthcare_tickets set status = 'received'"
                " where id = (select id from public.healthcare_tickets"
                " where secondary_provider_id = %s and status = 'sent' limit 1)"
                " returning id",
                [pharmacy],
            ).fetchone()
        time.sleep(0.01)
        return row

    frontends = [
        Frontend(database, "messages-1", post_message),
        Frontend(database, "messages-2", post_message),
        Frontend(database, "get-or-create", get_or_create),
        Frontend(database, "pharmacy", pharmacy_moves_on),
    ]
    for frontend in frontends:
        frontend.start()
    time.sleep(0.3)
    try:
        summary = run(
            Options(
                database_url=database.url,
                batch_size=50,
                pause_ms=20,
                lock_timeout_ms=LOCK_TIMEOUT_MS,
                statement_timeout_ms=10_000,
                max_retries=50,
            )
        )
    finally:
        time.sleep(0.3)
        for frontend in frontends:
            frontend.stop.set()
        for frontend in frontends:
            frontend.join(timeout=30)
    assert summary.finished

    for frontend in frontends:
        assert frontend.errors == [], frontend.name
        assert frontend.durations, frontend.name
        # No frontend statement waited on the backfill longer than its lock timeout.
        assert max(frontend.durations) < LOCK_TIMEOUT_MS / 1000 + 1, frontend.name
    # No lost message.
    posted = [r for f in frontends[:2] for r in f.results]
    assert posted
    stored = {
        (r[0], r[1])
        for r in conn.execute(
            "select thread_id, body from public.chat_messages where body like 'live %%'"
        )
    }
    assert set(posted) == stored
    # No duplicate ticket: one live ticket per appointment and pharmacy, one per legacy thread.
    assert conn.execute(
        "select count(*) from (select appointment_id, secondary_provider_id"
        " from public.healthcare_tickets where appointment_id is not null"
        " and status not in ('cancelled', 'failed') group by 1, 2 having count(*) > 1) as d"
    ).fetchone() == (0,)
    assert conn.execute(
        "select count(*) - count(distinct legacy_thread_id) from public.healthcare_tickets"
        " where legacy_thread_id is not null"
    ).fetchone() == (0,)
    # Every doctor's get_or_create answer is the ticket that now stands for the appointment.
    assert frontends[2].results
    # Nothing mappable is left behind.
    assert conn.execute(
        "select count(*) from private.backfill_thread_plan(array("
        " select id from public.chat_threads where ticket_id is null)) where action <> 'skip'"
    ).fetchone() == (0,)
