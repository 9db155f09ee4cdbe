"""What every benchmark needs: a throwaway cluster holding a fully migrated database."""

from __future__ import annotations

import shutil
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from app.localdb import LocalCluster, free_port
from app.migrate import Migrator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = PROJECT_ROOT / "supabase" / "migrations"


@dataclass(frozen=True)
class BenchCluster:
    cluster: LocalCluster
    url: str  # the migrated database "carehub"


@contextmanager
def migrated_cluster(settings: dict[str, str] | None = None) -> Iterator[BenchCluster]:
    """A fresh cluster with durable settings (as production) and a migrated database."""
    root = Path(tempfile.mkdtemp(prefix="carehub-bench-"))
    root.chmod(0o755)
    cluster = LocalCluster(
        root / "pg",
        free_port(),
        auth="trust",
        settings={"max_connections": "300", **(settings or {})},
    )
    cluster.start()
    try:
        with psycopg.connect(cluster.url(), autocommit=True) as admin:
            admin.execute("create database carehub")
        url = cluster.url("carehub")
        Migrator(url, MIGRATIONS, say=lambda _line: None).run()
        yield BenchCluster(cluster, url)
    finally:
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)  # destroy() leaves the temporary directory


def percentile(samples: Sequence[float], pct: float) -> float:
    """The pct-th percentile (0-100) of samples, by nearest rank."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else float("nan")
