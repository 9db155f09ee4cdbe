"""The legacy-thread backfill (`carehub backfill threads`, scripts/migrate_threads_to_tickets.py):
batches of legacy chat threads turned into tickets by private.backfill_threads_batch, one
short transaction each, with progress kept in private.backfill_runs so a stopped run resumes."""

from __future__ import annotations

import contextlib
import csv
import re
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

import psycopg
from tqdm import tqdm

from app.queries import load_queries

Q = load_queries("backfill.sql")

# Errors after which a batch is tried again (after a pause, smaller if it keeps failing): a
# lock not granted in time, a statement over its time, a deadlock, a serialization failure,
# a live ticket committed between the batch's plan and its insert (unique violation).
RETRYABLE = {"55P03", "57014", "40P01", "40001", "23505"}
REPORT_COLUMNS = ("thread_id", "order_id", "order_type", "reason", "detail")
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|min)?\s*$")
FIRST_ID = uuid.UUID(int=0)
CATCH_UP_MARGIN = timedelta(minutes=10)


class BackfillError(Exception):
    """A failure the operator can act on; the CLI prints it without a traceback."""


def parse_duration_ms(value: str, option: str) -> int:
    """`500ms`, `2s`, `1min` or a number of milliseconds, as milliseconds."""
    match = _DURATION.match(value)
    if not match:
        raise BackfillError(f"{option} {value!r}: give a duration such as 500ms, 2s or 1min")
    amount, unit = int(match.group(1)), match.group(2) or "ms"
    ms = amount * {"ms": 1, "s": 1000, "min": 60_000}[unit]
    if ms <= 0:
        raise BackfillError(f"{option} must be more than 0")
    return ms


@dataclass
class Options:
    database_url: str
    dry_run: bool = False
    batch_size: int = 1000
    max_batches: int | None = None
    # The frontends' room between batches: on two cores their p99 rose 2.1x at 250 ms and
    # 1.8x at 400 ms (bench/bench_backfill.py).
    pause_ms: int = 400
    lock_timeout_ms: int = 2000
    statement_timeout_ms: int = 10000
    max_retries: int = 10
    report: Path | None = None
    progress_every: int = 10


@dataclass
class Summary:
    threads_seen: int = 0
    tickets_created: int = 0
    threads_linked: int = 0
    threads_skipped: int = 0
    warnings: int = 0
    batches: int = 0
    retries: int = 0
    finished: bool = False
    reasons: Counter[str] = field(default_factory=Counter)
    warning_reasons: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    report_rows: int = 0


class Progress:
    """A tqdm bar with rate and ETA on a terminal; a plain line every N batches otherwise (a
    log file gets whole lines, not carriage returns)."""

    def __init__(self, total: int, out: TextIO, every: int) -> None:
        self.total = max(total, 1)
        self.out = out
        self.every = max(every, 1)
        self.started = time.monotonic()
        self.done = 0
        self.batches = 0
        self.bar = (
            tqdm(total=self.total, unit="thread", file=out, dynamic_ncols=True)
            if out.isatty()
            else None
        )

    def update(self, seen: int, summary: Summary) -> None:
        self.done += seen
        self.batches += 1
        counts = (
            f"{summary.tickets_created} created, {summary.threads_linked} linked, "
            f"{summary.threads_skipped} skipped"
        )
        if self.bar is not None:
            self.bar.update(seen)
            self.bar.set_postfix_str(counts)
            return
        if self.batches % self.every:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        eta = max(self.total - self.done, 0) / rate if rate > 0 else 0.0
        pct = min(100.0, 100.0 * self.done / self.total)
        self.out.write(
            f"batch {self.batches}: {self.done}/{self.total} threads ({pct:.0f}%), {rate:.0f}/s, "
            f"ETA {_clock(eta)}; {counts}\n"
        )
        self.out.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def _connect(options: Options) -> psycopg.Connection[Any]:
    try:
        conn = psycopg.connect(
            options.database_url, autocommit=True, application_name="carehub-backfill"
        )
    except psycopg.OperationalError as exc:
        raise BackfillError(f"cannot connect to the database: {exc}".strip()) from None
    # Session settings: a direct or session-pooler connection on Supabase, not port 6543.
    conn.execute(f"set lock_timeout = {options.lock_timeout_ms}")
    conn.execute(f"set statement_timeout = {options.statement_timeout_ms}")
    # A batch is many short statements; compiling one (JIT) costs more than running it.
    conn.execute("set jit = off")
    row = conn.execute(Q.check_backfill_installed).fetchone()
    if not row or not row[0]:
        raise BackfillError(
            "the backfill functions are missing: run `carehub db migrate` on this database first"
        )
    row = conn.execute(Q.try_lock_backfill).fetchone()
    if not row or not row[0]:
        raise BackfillError(
            "another backfill is running on this database; wait for it (or stop it) and start "
            "again: this one would resume where it stops"
        )
    return conn


def run(options: Options, out: TextIO = sys.stdout) -> Summary:
    """Run (or resume) the backfill; returns its summary. Raises BackfillError."""
    started = time.monotonic()
    conn = _connect(options)
    try:
        summary = _dry_run(conn, options, out) if options.dry_run else _run(conn, options, out)
    finally:
        if not conn.closed:
            # On failure the connection is going anyway, and the lock with it.
            with contextlib.suppress(psycopg.Error):
                conn.execute(Q.unlock_backfill)
        conn.close()
    summary.seconds = time.monotonic() - started
    return summary


def _dry_run(conn: psycopg.Connection[Any], options: Options, out: TextIO) -> Summary:
    summary = Summary()
    rows: list[tuple[Any, ...]] = []
    total = conn.execute(Q.threads_left).fetchone()
    progress = Progress(total[0] if total else 0, out, options.progress_every)
    after = FIRST_ID
    # Reads only, in one read-only transaction per batch: nothing is written, not even a run.
    while options.max_batches is None or summary.batches < options.max_batches:
        with conn.transaction():
            conn.execute("set transaction read only")
            ids = [
                r[0]
                for r in conn.execute(
                    Q.next_thread_ids, {"after_id": after, "batch_size": options.batch_size}
                )
            ]
            if not ids:
                summary.finished = True
                break
            plan = conn.execute(Q.plan_threads, {"thread_ids": ids}).fetchall()
        after = ids[-1]
        summary.batches += 1
        summary.threads_seen += len(ids)
        for thread_id, order_id, order_type, action, reason, detail, warnings in plan:
            if action == "create":
                summary.tickets_created += 1
            elif action == "link":
                summary.threads_linked += 1
            else:
                summary.threads_skipped += 1
                summary.reasons[reason] += 1
                rows.append((thread_id, order_id, order_type, reason, detail))
            for warning in warnings or []:
                summary.warnings += 1
                summary.warning_reasons[warning["reason"]] += 1
                rows.append((thread_id, order_id, order_type, warning["reason"], warning["detail"]))
        progress.update(len(ids), summary)
    progress.close()
    if options.report:
        summary.report_rows = _write_report(options.report, rows)
    return summary


def _run(conn: psycopg.Connection[Any], options: Options, out: TextIO) -> Summary:
    summary = Summary()
    row = conn.execute(Q.running_run).fetchone() or conn.execute(Q.start_run).fetchone()
    assert row is not None
    run_id, phase, after, run_started, *_ = row
    if row[9]:
        out.write(
            f"resuming run {run_id} ({phase}, after thread {after}): {row[4]} threads seen, "
            f"{row[5]} tickets created so far\n"
        )
    else:
        out.write(f"run {run_id} started\n")
    out.flush()
    total = conn.execute(Q.threads_left).fetchone()
    progress = Progress(total[0] if total else 0, out, options.progress_every)
    batch_size = options.batch_size
    migrated_this_pass = 0
    try:
        while options.max_batches is None or summary.batches < options.max_batches:
            # A thread created by a transaction that began shortly before the run carries that
            # transaction's start as created_at: the catch-up reaches back a margin.
            since = run_started - CATCH_UP_MARGIN if phase == "catch_up" else None
            result, seconds = _batch_with_retries(
                conn,
                options,
                summary,
                {"run_id": run_id, "after_id": after, "batch_size": batch_size, "since_at": since},
            )
            last, seen, created, linked, skipped, warnings = result
            if last is None:
                if phase == "scan":
                    conn.execute(Q.start_catch_up, {"run_id": run_id})
                    phase, after, migrated_this_pass = "catch_up", None, 0
                    continue
                if migrated_this_pass:
                    # Threads were created while the last pass went: one more pass.
                    conn.execute(Q.restart_catch_up, {"run_id": run_id})
                    after, migrated_this_pass = None, 0
                    continue
                conn.execute(Q.finish_run, {"run_id": run_id})
                summary.finished = True
                break
            after = last
            summary.batches += 1
            summary.threads_seen += seen
            summary.tickets_created += created
            summary.threads_linked += linked
            summary.threads_skipped += skipped
            summary.warnings += warnings
            migrated_this_pass += created + linked
            progress.update(seen, summary)
            # Batches sized so no lock is held for long: a frontend waiting on one of its
            # rows waits at most for the rest of the batch. Shrink one that came near the lock
            # timeout, grow back (by steps) while well under it.
            if seconds * 1000 > options.lock_timeout_ms * 0.8 and batch_size > 10:
                batch_size = max(10, int(batch_size * 0.6))
            elif seconds * 1000 < options.lock_timeout_ms * 0.4 and batch_size < options.batch_size:
                batch_size = min(options.batch_size, int(batch_size * 1.25) + 1)
            if options.pause_ms:
                time.sleep(options.pause_ms / 1000)
    finally:
        progress.close()
    # By reason, for the whole run (a resumed run's earlier sessions included).
    for outcome, reason, count in conn.execute(Q.run_reasons, {"run_id": run_id}):
        (summary.reasons if outcome == "skipped" else summary.warning_reasons)[reason] += count
    summary.warnings = sum(summary.warning_reasons.values())
    if options.report:
        summary.report_rows = _write_report(options.report, conn.execute(Q.report_rows).fetchall())
    return summary


def _batch_with_retries(
    conn: psycopg.Connection[Any],
    options: Options,
    summary: Summary,
    params: dict[str, Any],
) -> tuple[tuple[Any, ...], float]:
    failures = 0
    while True:
        began = time.monotonic()
        try:
            with conn.transaction():
                row = conn.execute(Q.run_batch, params).fetchone()
            assert row is not None
            return row, time.monotonic() - began
        except psycopg.Error as exc:
            state = exc.sqlstate or ""
            if isinstance(exc, psycopg.OperationalError) and conn.closed:
                raise BackfillError(
                    f"lost the connection to the database ({exc}); run again to resume: the "
                    "batches committed so far are kept"
                ) from None
            if state not in RETRYABLE:
                raise BackfillError(
                    f"batch after thread {params['after_id']} failed ({state or 'no code'}): "
                    f"{_first_line(exc)}; nothing of this batch was written, run again to "
                    "resume once the cause is fixed"
                ) from None
            failures += 1
            summary.retries += 1
            if failures > options.max_retries:
                raise BackfillError(
                    f"batch after thread {params['after_id']} failed {failures} times "
                    f"({_first_line(exc)}); giving up. Live traffic holds the rows it needs: "
                    "run again later, or with a smaller --batch-size or a longer "
                    "--lock-timeout / --statement-timeout"
                ) from None
            if failures >= 2 and params["batch_size"] > 1:
                params["batch_size"] = max(1, params["batch_size"] // 2)
            time.sleep(min(5.0, max(options.pause_ms, 50) / 1000 * 2**failures))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _write_report(path: Path, rows: list[tuple[Any, ...]]) -> int:
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(REPORT_COLUMNS)
            for row in rows:
                writer.writerow(["" if v is None else str(v) for v in row])
    except OSError as exc:
        raise BackfillError(f"cannot write the report {path}: {exc.strerror}") from None
    return len(rows)


def format_summary(summary: Summary, options: Options) -> str:
    lines = [
        ("dry run (nothing written): " if options.dry_run else "")
        + ("finished" if summary.finished else "stopped before the end (run again to resume)"),
        f"threads seen: {summary.threads_seen}",
        f"tickets {'to create' if options.dry_run else 'created'}: {summary.tickets_created}",
        f"threads {'to link' if options.dry_run else 'linked'} to an existing ticket: "
        f"{summary.threads_linked}",
        f"threads skipped: {summary.threads_skipped}",
    ]
    lines += [f"  {reason}: {n}" for reason, n in summary.reasons.most_common()]
    if summary.warning_reasons:
        lines.append(f"warnings: {summary.warnings}")
        lines += [f"  {reason}: {n}" for reason, n in summary.warning_reasons.most_common()]
    if summary.retries:
        lines.append(f"batches retried: {summary.retries}")
    if options.report:
        lines.append(f"report: {options.report} ({summary.report_rows} rows)")
    lines.append(f"time taken: {summary.seconds:.1f}s")
    return "\n".join(lines)
