"""Named queries: SQL kept in files under app/sql/, one query per `-- name: <name>` header.

    -- name: expire_reservation_requests
    -- Expire pending requests whose hold ran out; returns how many.
    select public.expire_reservation_requests();

``load_queries("worker.sql").expire_reservation_requests`` is that text.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

SQL_DIR = Path(__file__).resolve().parent / "sql"
_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def load_queries(file_name: str) -> SimpleNamespace:
    text = (SQL_DIR / file_name).read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{file_name}: query {name} is defined twice")
        queries[name] = body.strip().rstrip(";")
    return SimpleNamespace(**queries)
