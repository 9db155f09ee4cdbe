"""Scheduling sweeps in the worker: the jobs `carehub worker` runs, against a real database."""

from __future__ import annotations

import threading

import psycopg

from app.jobs import Worker, default_jobs
from tests.helpers import TestDatabase, as_anon
from tests.scheduling.factories import (
    assert_counters_true,
    create_practitioner,
    create_service,
    create_slot,
    request,
    slot_row,
)


def test_worker_runs_both_scheduling_sweeps_every_minute() -> None:
    jobs = {job.name: job for job in default_jobs()}
    assert jobs["expire_reservation_requests"].every == 60
    assert jobs["expire_time_slots"].every == 60
    names = [job.name for job in default_jobs()]
    # Holds of a started slot expire before the slot does.
    assert names.index("expire_reservation_requests") < names.index("expire_time_slots")


def test_worker_run_once_expires_run_out_holds_and_started_slots(
    database: TestDatabase, conn: psycopg.Connection
) -> None:
    doctor = create_practitioner(conn)
    service = create_service(conn, doctor)
    held, started, future = (create_slot(conn, doctor, service) for _ in range(3))
    with as_anon(conn):
        request_id = request(conn, held)["request_id"]
    conn.execute(
        "update public.reservation_request set expires_at = now() - interval '1 second'"
        " where id = %s",
        [request_id],
    )
    # Time passing is no event: emulate it by moving the slot with its trigger off.
    conn.execute("alter table public.time_slot disable trigger maintain_time_slot")
    conn.execute(
        "update public.time_slot set start_time = now() - interval '10 minutes',"
        " end_time = now() + interval '20 minutes' where id = %s",
        [started],
    )
    conn.execute("alter table public.time_slot enable trigger maintain_time_slot")

    worker = Worker(database.url, default_jobs(), stop=threading.Event())
    jobs = {job.name: job for job in worker.jobs}
    worker_conn = database.connect()
    assert worker.run_once(worker_conn, jobs["expire_reservation_requests"]) == 1
    assert worker.run_once(worker_conn, jobs["expire_time_slots"]) == 1
    assert worker.run_once(worker_conn, jobs["expire_reservation_requests"]) == 0
    assert worker.run_once(worker_conn, jobs["expire_time_slots"]) == 0

    assert conn.execute(
        "select status from public.reservation_request where id = %s", [request_id]
    ).fetchone() == ("expired",)
    assert slot_row(conn, held)["status"] == "available"
    assert slot_row(conn, started)["status"] == "expired"
    assert slot_row(conn, future)["status"] == "available"
    assert_counters_true(conn, held)
