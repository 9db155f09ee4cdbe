#!/usr/bin/env python3
"""Give legacy chat threads their tickets on the live database: the same command as
`carehub backfill threads` (see the README, "Backfilling legacy threads"), runnable from a
checkout as `python scripts/migrate_threads_to_tickets.py [options]`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.backfill.cli import threads

if __name__ == "__main__":
    threads(prog_name="migrate_threads_to_tickets.py")
