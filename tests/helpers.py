"""Helpers for tests: request emulation as PostgREST does it, and factories."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import psycopg

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = PROJECT_ROOT / "supabase" / "migrations"


@dataclass
class TestDatabase:
    """A database of one test: its URL and the connections the test opened."""

    __test__ = False  # not a test class, whatever its name says

    url: str
    _connections: list[psycopg.Connection] = field(default_factory=list)

    def connect(self, *, autocommit: bool = True) -> psycopg.Connection:
        connection = psycopg.connect(self.url, autocommit=autocommit)
        self._connections.append(connection)
        return connection

    def close(self) -> None:
        for connection in self._connections:
            connection.close()


@contextmanager
def _request(
    conn: psycopg.Connection, role: str, claims: dict[str, object]
) -> Iterator[psycopg.Connection]:
    # Exactly what PostgREST runs at the start of each request's transaction.
    with conn.transaction():
        conn.execute(f"set local role {role}")
        conn.execute(
            "select set_config('request.jwt.claims', %s, true),"
            " set_config('request.method', 'POST', true)",
            [json.dumps(claims)],
        )
        yield conn


def as_user(
    conn: psycopg.Connection, user_id: uuid.UUID | str, *, email: str | None = None
) -> AbstractContextManager[psycopg.Connection]:
    """A request by the signed-in user ``user_id`` (role authenticated), in one transaction."""
    claims: dict[str, object] = {
        "sub": str(user_id),
        "role": "authenticated",
        "aud": "authenticated",
    }
    if email:
        claims["email"] = email
    return _request(conn, "authenticated", claims)


def as_anon(conn: psycopg.Connection) -> AbstractContextManager[psycopg.Connection]:
    """A request with the anon key: role anon, claims without ``sub``."""
    return _request(conn, "anon", {"role": "anon"})


def as_service(conn: psycopg.Connection) -> AbstractContextManager[psycopg.Connection]:
    """A request with the service-role key (bypasses RLS, as on Supabase)."""
    return _request(conn, "service_role", {"role": "service_role"})


# -- factories (run as the connection's own role: the superuser, i.e. "system") ---------------


def create_user(
    conn: psycopg.Connection,
    role: str = "patient",
    *,
    email: str | None = None,
    phone: str | None = None,
    full_name: str | None = None,
) -> uuid.UUID:
    """Sign a user up the way GoTrue does: a row in auth.users (the profile follows)."""
    user_id = uuid.uuid4()
    conn.execute(
        "insert into auth.users (id, aud, role, email, phone, raw_app_meta_data,"
        " raw_user_meta_data, created_at, updated_at)"
        " values (%s, 'authenticated', 'authenticated', %s, %s, %s, %s, now(), now())",
        [
            user_id,
            email or f"{role}-{user_id.hex[:8]}@example.test",
            phone,
            json.dumps({"provider": "email", "providers": ["email"], "role": role}),
            json.dumps({"full_name": full_name} if full_name else {}),
        ],
    )
    return user_id


def create_provider(
    conn: psycopg.Connection,
    kind: str,
    *,
    name: str | None = None,
    expertise: Sequence[str] = (),
    is_active: bool = True,
    owner: uuid.UUID | None = None,
    staff: Sequence[uuid.UUID] = (),
) -> uuid.UUID:
    row = conn.execute(
        "insert into public.providers (kind, name, expertise, is_active)"
        " values (%s, %s, %s, %s) returning id",
        [kind, name or f"{kind} {uuid.uuid4().hex[:6]}", list(expertise), is_active],
    ).fetchone()
    assert row is not None
    provider_id = row[0]
    if owner:
        add_member(conn, provider_id, owner, "owner")
    for member in staff:
        add_member(conn, provider_id, member, "staff")
    return provider_id


def add_member(
    conn: psycopg.Connection,
    provider_id: uuid.UUID,
    profile_id: uuid.UUID,
    member_role: str = "staff",
) -> None:
    conn.execute(
        "insert into public.provider_members (provider_id, profile_id, member_role)"
        " values (%s, %s, %s)",
        [provider_id, profile_id, member_role],
    )


def pg_dump_schema(url: str) -> str:
    """``pg_dump --schema-only`` of the database at ``url``."""
    import subprocess

    from app.localdb import find_bin_dir

    result = subprocess.run(
        [str(find_bin_dir() / "pg_dump"), "--schema-only", "--no-owner", url],
        capture_output=True,
        text=True,
        check=True,
    )
    # \restrict / \unrestrict carry a random key per dump (pg_dump security fix); drop them.
    return "".join(
        line
        for line in result.stdout.splitlines(keepends=True)
        if not line.startswith(("\\restrict", "\\unrestrict"))
    )


class CarehubProcess:
    """`python -m app <args>` in a subprocess whose output is read as it comes (so a full pipe
    never blocks it) and can be waited on line by line."""

    def __init__(self, *args: str, env: dict[str, str]):
        import subprocess
        import sys
        import threading

        self._lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", *args],
            cwd=PROJECT_ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout as stream:
            for line in stream:
                with self._changed:
                    self._lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for_line(self, text: str, timeout: float = 60) -> None:
        """Block until a line containing ``text`` was printed; fail if the process ends first."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: (
                    any(text in line for line in self._lines)
                    or (self.process.poll() is not None and not self._reader.is_alive())
                ),
                timeout=timeout,
            )
            if not found or not any(text in line for line in self._lines):
                raise AssertionError(f"no line with {text!r} in:\n{''.join(self._lines)}")

    def stop(self, signum: int, timeout: float = 60) -> int:
        """Send ``signum`` and wait for the exit; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        returncode = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return returncode


def run_together(count: int, work: Callable[[int], T]) -> list[T | BaseException]:
    """Call work(0) ... work(count - 1), each on its own thread, all released at one instant by
    a barrier. Returns each call's result or the exception it raised, in index order, so the
    test asserts on every outcome."""
    import threading

    barrier = threading.Barrier(count)
    results: list[T | BaseException] = [RuntimeError("did not run")] * count

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[index] = work(index)
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return results
