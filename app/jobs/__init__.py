"""The worker: periodic and notification-driven jobs, each a call into SQL.

A job runs every ``every`` seconds and also at once when a NOTIFY arrives on one of its
``channels``. Each run is one transaction; a failing run is logged and retried at its next turn.

Every job runs on lanes of its own: a lane is a thread with its own connection, so a slow job
(a Twilio send waiting on the network, say) never holds up another (Lifefile processing). A
queue job (``queue=True``) gets ``concurrency`` lanes, which claim work with
``for update skip locked`` in SQL, and runs again at once while it finds work; a sweep gets one
lane. Several worker processes share the queues the same way. One more connection listens for
the NOTIFYs and wakes the lanes.

SIGTERM or SIGINT stops every lane after its current run (waiting at most
``STOP_GRACE_SECONDS`` for it). A lane that is reconnecting, backing off or idle is not waited
for: the process exits at once, even while a connection attempt to a database that does not
answer hangs.
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

# How long the listener waits for a NOTIFY before it looks at the stop flag again.
LISTEN_SECONDS = 0.5
# How long a stop waits for running jobs to end their transaction before the process leaves.
STOP_GRACE_SECONDS = 5.0
# A database that does not answer must not keep a lane (and a stop) waiting for ever.
CONNECT_TIMEOUT_SECONDS = 5
MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[psycopg.Connection], int | None]  # returns how many items it handled
    every: float
    channels: tuple[str, ...] = ()
    # A queue: `concurrency` lanes, each running again at once while it handles something.
    queue: bool = False
    # The job opens its own transactions on the (autocommit) connection: a job that calls out
    # (a Twilio send) claims in one, calls with none open, and records the result in another,
    # so no lock or snapshot is held across the network.
    own_transactions: bool = False


def default_jobs() -> list[Job]:
    """Every job `carehub worker` runs."""
    from app.jobs.analytics import analytics_jobs
    from app.jobs.lifefile import lifefile_jobs
    from app.jobs.messaging import messaging_jobs
    from app.jobs.scheduling import scheduling_jobs
    from app.jobs.webhooks import webhook_jobs

    return [
        *scheduling_jobs(),
        *lifefile_jobs(),
        *webhook_jobs(),
        *messaging_jobs(),
        *analytics_jobs(),
    ]


class Worker:
    def __init__(
        self,
        database_url: str,
        jobs: Sequence[Job],
        stop: threading.Event | None = None,
        *,
        concurrency: int = 1,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.database_url = database_url
        self.jobs = list(jobs)
        self.stop = stop or threading.Event()
        self.concurrency = concurrency
        self._busy: set[str] = set()  # lanes in the middle of a run, which a stop waits for
        self._busy_lock = threading.Lock()
        # Set once the listener listens: lanes start then, so no NOTIFY falls between the two.
        self._listening = threading.Event()
        if not any(job.channels for job in self.jobs):
            self._listening.set()
        # One wake-up per lane; a NOTIFY or a stop sets them.
        self._wakes: dict[str, list[threading.Event]] = {
            job.name: [threading.Event() for _ in range(concurrency if job.queue else 1)]
            for job in self.jobs
        }

    def install_signal_handlers(self) -> None:
        def request_stop(signum: int, _frame: object) -> None:
            log.info(
                "worker: %s received, stopping after the current jobs", signal.Signals(signum).name
            )
            self.request_stop()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

    def request_stop(self) -> None:
        self.stop.set()
        self._wake_all()

    def run_forever(self) -> None:
        lanes = sum(len(w) for w in self._wakes.values())
        log.info(
            "worker: started with jobs %s (%d lanes, concurrency %d)",
            ", ".join(j.name for j in self.jobs) or "none",
            lanes,
            self.concurrency,
        )
        threads = [
            threading.Thread(
                target=self._lane, args=(job, wake), name=f"{job.name}-{n}", daemon=True
            )
            for job in self.jobs
            for n, wake in enumerate(self._wakes[job.name])
        ]
        if any(job.channels for job in self.jobs):
            threads.append(threading.Thread(target=self._listen, name="listener", daemon=True))
        for thread in threads:
            thread.start()
        # The main thread only waits, so a signal is handled at once whatever the lanes do.
        while not self.stop.wait(1.0):
            pass
        self._wake_all()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline:
            with self._busy_lock:
                if not self._busy:
                    break
            time.sleep(0.02)
        with self._busy_lock:
            if self._busy:
                log.warning(
                    "worker: stopped without waiting longer for %s", ", ".join(sorted(self._busy))
                )
        log.info("worker: stopped")

    def run_once(self, conn: psycopg.Connection, job: Job) -> int | None:
        """Run ``job`` in a transaction of its own (unless it opens its own); errors are logged,
        never raised."""
        started = time.perf_counter()
        try:
            if job.own_transactions:
                handled = job.run(conn)
            else:
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

    def _connect(self, role: str) -> psycopg.Connection:
        return psycopg.connect(
            self.database_url,
            autocommit=True,
            application_name=f"carehub worker {role}",
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
        )

    def _wake_all(self) -> None:
        for wakes in self._wakes.values():
            for wake in wakes:
                wake.set()

    def _lane(self, job: Job, wake: threading.Event) -> None:
        name = threading.current_thread().name
        backoff = 1.0
        # Not for ever: with the database down the listener cannot listen, and the lane's own
        # connection attempt then reports the outage.
        self._listening.wait(CONNECT_TIMEOUT_SECONDS)
        while not self.stop.is_set():
            try:
                with self._connect(job.name) as conn:
                    backoff = 1.0
                    while not self.stop.is_set():
                        wake.clear()
                        with self._busy_lock:
                            if self.stop.is_set():
                                break
                            self._busy.add(name)
                        try:
                            handled = self.run_once(conn, job)
                        finally:
                            with self._busy_lock:
                                self._busy.discard(name)
                        if job.queue and handled:
                            # More may wait: drain the queue before sleeping, and call the next
                            # lane in, so a backlog spreads over every lane while a trickle
                            # keeps the others asleep.
                            siblings = self._wakes[job.name]
                            siblings[(siblings.index(wake) + 1) % len(siblings)].set()
                            continue
                        wake.wait(job.every)
            except psycopg.OperationalError as exc:
                if self.stop.is_set():
                    return
                log.error(
                    "worker: %s lost its database connection (%s); retrying in %.0f s",
                    job.name,
                    str(exc).strip(),
                    backoff,
                )
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _listen(self) -> None:
        channels = sorted({c for job in self.jobs for c in job.channels})
        backoff = 1.0
        while not self.stop.is_set():
            try:
                with self._connect("listener") as listener:
                    for channel in channels:
                        listener.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
                    backoff = 1.0
                    if self._listening.is_set():
                        self._wake_all()  # reconnected: what was notified while nobody listened
                    self._listening.set()
                    turn = 0
                    while not self.stop.is_set():
                        for notify in listener.notifies(timeout=LISTEN_SECONDS):
                            turn += 1
                            for job in self.jobs:
                                if notify.channel in job.channels:
                                    # One lane per notification, in turn: waking every lane
                                    # for a few new events only makes them race for those.
                                    # A lane that finds work calls the next one in.
                                    wakes = self._wakes[job.name]
                                    wakes[turn % len(wakes)].set()
            except psycopg.OperationalError as exc:
                if self.stop.is_set():
                    return
                log.error(
                    "worker: listener lost its database connection (%s); retrying in %.0f s",
                    str(exc).strip(),
                    backoff,
                )
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
