"""The worker's Lifefile job: process the webhook inbox into tracking, history and tickets.

Woken at once by NOTIFY lifefile_webhook_events (sent when a delivery is stored and when a
prescription gains its Lifefile link), and run every ``SWEEP_SECONDS`` anyway for unmatched
events whose retry is due and for anything a missed notification left behind. A queue job (see
app.jobs.webhooks.inbox_job): it runs on the worker's ``--concurrency`` lanes, each claiming a
batch with ``for update skip locked`` and never an event whose order has an earlier one still
waiting (events of one order are processed in arrival order). The processing itself is SQL
(private.process_lifefile_events).
"""

from __future__ import annotations

from app.jobs import Job
from app.jobs.webhooks import inbox_job
from app.webhooks.lifefile import CHANNEL, INBOX

SWEEP_SECONDS = 15.0
BATCH_SIZE = 100

__all__ = ["CHANNEL", "lifefile_jobs"]


def lifefile_jobs() -> list[Job]:
    return [inbox_job(INBOX, every=SWEEP_SECONDS, batch_size=BATCH_SIZE)]
