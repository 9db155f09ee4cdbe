"""The worker: periodic and notification-driven jobs, each a call into SQL.

A job runs every ``every`` seconds and also at once when a NOTIFY arrives on one of its
``channels``. Each run is one transaction on the worker's connection; a failing run is logged
and retried at its next turn. SIGTERM or SIGINT stops the loop between runs.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

# How long the loop may sleep before it looks at the stop flag again.
MAX_SLEEP_SECONDS = 1.0


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[psycopg.Connection], int | None]  # returns how many items it handled
    every: float
    channels: tuple[str, ...] = ()


def default_jobs() -> list[Job]:
    """Every job `carehub worker` runs."""
    from app.jobs.lifefile import lifefile_jobs
    from app.jobs.scheduling import scheduling_jobs

    return [*scheduling_jobs(), *lifefile_jobs()]


class Worker:
    def __init__(self, database_url: str, jobs: Sequence[Job], stop: threading.Event | None = None):
        self.database_url = database_url
        self.jobs = list(jobs)
        self.stop = stop or threading.Event()
        self._due = {job.name: 0.0 for job in self.jobs}

    def install_signal_handlers(self) -> None:
        def request_stop(signum: int, _frame: object) -> None:
            log.info(
                "worker: %s received, stopping after the current job", signal.Signals(signum).name
            )
            self.stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

    def run_forever(self) -> None:
        log.info("worker: started with jobs %s", ", ".join(j.name for j in self.jobs) or "none")
        backoff = 1.0
        while not self.stop.is_set():
            try:
                self._serve()
                backoff = 1.0
            except psycopg.OperationalError as exc:
                log.error("worker: database connection lost (%s); retrying in %.0f s", exc, backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        log.info("worker: stopped")

    def run_once(self, conn: psycopg.Connection, job: Job) -> int | None:
        """Run ``job`` in a transaction of its own; errors are logged, never raised."""
        started = time.perf_counter()
        try:
            with conn.transaction():
                handled = job.run(conn)
        except psycopg.OperationalError:
            raise
        except Exception:
            log.exception("worker: job %s failed; it runs again at its next turn", job.name)
            return None
        if handled:
            log.info(
                "worker: %s handled %s in %.0f ms",
                job.name,
                handled,
                (time.perf_counter() - started) * 1000,
            )
        return handled

    def _serve(self) -> None:
        with (
            psycopg.connect(
                self.database_url, autocommit=True, application_name="carehub worker"
            ) as conn,
            psycopg.connect(
                self.database_url, autocommit=True, application_name="carehub worker listener"
            ) as listener,
        ):
            for channel in sorted({c for job in self.jobs for c in job.channels}):
                listener.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
            while not self.stop.is_set():
                now = time.monotonic()
                for job in self.jobs:
                    if self._due[job.name] <= now and not self.stop.is_set():
                        self.run_once(conn, job)
                        self._due[job.name] = time.monotonic() + job.every
                self._sleep(listener)

    def _sleep(self, listener: psycopg.Connection) -> None:
        next_due = min(self._due.values(), default=time.monotonic() + MAX_SLEEP_SECONDS)
        timeout = max(0.0, min(next_due - time.monotonic(), MAX_SLEEP_SECONDS))
        for notify in listener.notifies(timeout=timeout, stop_after=1):
            for job in self.jobs:
                if notify.channel in job.channels:
                    self._due[job.name] = 0.0
