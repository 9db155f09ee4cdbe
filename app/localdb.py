"""The embedded PostgreSQL cluster: `carehub db start|stop|status` and the test harness.

A cluster is a data directory plus the server binaries found on this machine. PostgreSQL refuses
to run as root, so when we are root the cluster is created and run as an unprivileged system
account (``postgres`` when it exists, else ``nobody``; ``CAREHUB_PG_OS_USER`` overrides), which
owns the data directory. Nothing here needs sudo or runuser: subprocess drops privileges itself.
That account must be able to reach the data directory: carehub makes the directories it created
itself searchable, and never changes the permissions of anything above them (the checkout, the
home directory): it names the directory to fix instead.

A cluster remembers its port: `carehub db status|start` report the port a running server
listens on (postmaster.pid), and a stopped cluster starts again on the port it was last given
(postgresql.auto.conf) unless CAREHUB_DB_PORT asks for another.
"""

from __future__ import annotations

import glob
import grp
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH or under "
    "/usr/lib/postgresql/*/bin.\n"
    "Install them:  Debian/Ubuntu: sudo apt-get install postgresql   "
    "macOS: brew install postgresql@15\n"
    "Or skip the embedded database: run `supabase start` and set DATABASE_URL to the database "
    "URL it prints (postgresql://postgres:postgres@127.0.0.1:54322/postgres)."
)

DEFAULT_PORT = 54330

# The local development cluster's superuser password, the same as `supabase start` uses. The
# cluster listens on 127.0.0.1 only.
DEV_PASSWORD = "postgres"  # noqa: S105


class ClusterError(RuntimeError):
    """A local cluster could not be found, created, started or stopped."""


def find_bin_dir() -> Path:
    """Return the directory holding initdb/pg_ctl/postgres, newest major version first."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    versioned.sort(key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    candidates.extend(Path(p) for p in reversed(versioned))
    for directory in candidates:
        if all((directory / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    raise ClusterError(INSTALL_HINT)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class OsUser:
    """The account the server runs as (ourselves unless we are root)."""

    uid: int
    gid: int
    name: str

    @classmethod
    def for_server(cls) -> OsUser:
        if os.geteuid() != 0:
            entry = pwd.getpwuid(os.geteuid())
            return cls(entry.pw_uid, entry.pw_gid, entry.pw_name)
        wanted = os.environ.get("CAREHUB_PG_OS_USER")
        for name in [wanted] if wanted else ["postgres", "nobody"]:
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            return cls(entry.pw_uid, entry.pw_gid, entry.pw_name)
        raise ClusterError(
            "running as root, and no unprivileged account to run PostgreSQL as was found; "
            "create one (useradd --system postgres) or name one in CAREHUB_PG_OS_USER"
        )

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()


class LocalCluster:
    """A PostgreSQL cluster in ``root`` (data in ``root/data``, socket and log beside it).

    ``auth`` is ``scram-sha-256`` for the persistent development cluster (password ``postgres``,
    like `supabase start`) and ``trust`` for throwaway test clusters.
    """

    def __init__(
        self,
        root: Path,
        port: int,
        *,
        auth: str = "scram-sha-256",
        password: str = DEV_PASSWORD,
        settings: dict[str, str] | None = None,
        boundary: Path | None = None,
    ):
        self.root = root.resolve()
        # The directory above which carehub changes no permission (default: root's parent).
        self.boundary = (boundary or root.parent).resolve()
        self.port = port
        self.auth = auth
        self.password = password
        self.settings = settings or {}
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log = self.root / "postgres.log"
        self._bin: Path | None = None
        self._user: OsUser | None = None

    @property
    def bin(self) -> Path:
        if self._bin is None:
            self._bin = find_bin_dir()
        return self._bin

    @property
    def user(self) -> OsUser:
        if self._user is None:
            self._user = OsUser.for_server()
        return self._user

    def url(self, dbname: str = "postgres") -> str:
        secret = f":{self.password}" if self.auth != "trust" else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{dbname}"

    # -- lifecycle -----------------------------------------------------------------------

    def is_initialized(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def is_running(self) -> bool:
        if not self.is_initialized():
            return False
        result = self._run(["pg_ctl", "status", "-D", str(self.data)], check=False)
        return result.returncode == 0

    def running_port(self) -> int | None:
        """The port the running server listens on (line 4 of postmaster.pid), if it runs."""
        if not self.is_running():
            return None
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError):
            return None

    def adopt_running_port(self) -> int | None:
        """When the server runs, take the port it really listens on (whatever this object was
        built with) and return it; None when it does not run."""
        port = self.running_port()
        if port is not None:
            self.port = port
        return port

    def configured_port(self) -> int | None:
        """The port this cluster was last started on (postgresql.auto.conf), if any."""
        try:
            text = (self.data / "postgresql.auto.conf").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "port" and value.strip().strip("'").isdigit():
                return int(value.strip().strip("'"))
        return None

    def start(self) -> bool:
        """Create the cluster if needed and start it. Returns False when it was already up."""
        if not self.is_initialized():
            self._init()
        if self.adopt_running_port() is not None:
            return False
        self._write_settings()
        result = self._run(
            ["pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log)],
            check=False,
        )
        if result.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise ClusterError(
                f"PostgreSQL did not start (pg_ctl exit {result.returncode}).\n"
                f"{result.stderr.strip()}\nLast lines of {self.log}:\n{tail}\n"
                f"Is port {self.port} taken? Set CAREHUB_DB_PORT to another port."
            )
        return True

    def stop(self, mode: str = "fast") -> bool:
        """Stop the server. Returns False when it was not running."""
        if not self.is_running():
            return False
        self._run(["pg_ctl", "stop", "-w", "-m", mode, "-D", str(self.data)])
        return True

    def destroy(self) -> None:
        self.stop(mode="immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- internals -----------------------------------------------------------------------

    def _init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self.data.mkdir(exist_ok=True)
        pwfile = self.root / ".pwfile"
        pwfile.write_text(self.password + "\n")
        self._hand_over(self.root, self.socket_dir, self.data, pwfile)
        # The server account must be able to reach its directory through our parents.
        self._ensure_traversable()
        try:
            self._run(
                [
                    "initdb",
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    f"--auth={self.auth}",
                    f"--pwfile={pwfile}",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _write_settings(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "wal_level": "logical",
            "max_connections": "200",
            "shared_buffers": "'256MB'",
            "timezone": "'UTC'",
            **self.settings,
        }
        conf = self.data / "postgresql.auto.conf"
        conf.write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
        self._hand_over(conf)

    def _hand_over(self, *paths: Path) -> None:
        if not self.user.is_self:
            for path in paths:
                os.chown(path, self.user.uid, self.user.gid)

    def _ensure_traversable(self) -> None:
        """Let the server account reach ``root``: fix what lies below ``boundary`` (carehub's own
        directories); for anything at or above it, say what to change and change nothing."""
        if self.user.is_self:
            return
        blocked = unsearchable_directories(self.root, self.user, stop_at=self.boundary)
        if blocked:
            listing = " ".join(str(d) for d in blocked)
            raise ClusterError(
                f"PostgreSQL runs as {self.user.name!r} (it refuses root), and that account "
                f"cannot reach {self.root}: {listing} may not be searched by it. carehub does "
                "not change permissions outside the project; allow it yourself with "
                f"`chmod o+x {listing}`, or move the checkout somewhere {self.user.name!r} can "
                "reach, or name another account in CAREHUB_PG_OS_USER."
            )
        for directory in [self.root, *self.root.parents]:
            if directory == self.boundary or self.boundary not in directory.parents:
                break
            mode = directory.stat().st_mode
            if not _searchable(directory, self.user):
                directory.chmod(mode | 0o001)

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin / argv[0]), *argv[1:]]
        kwargs: dict[str, object] = {}
        if not self.user.is_self:
            kwargs = {"user": self.user.uid, "group": self.user.gid, "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C.UTF-8"}
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=env,
            cwd=self.root,
            check=False,
            **kwargs,  # type: ignore[arg-type]
        )
        if check and result.returncode != 0:
            raise ClusterError(f"{Path(argv[0]).name} failed: {result.stderr.strip()}")
        return result


def _searchable(directory: Path, user: OsUser) -> bool:
    info = directory.stat()
    if info.st_uid == user.uid:
        return bool(info.st_mode & 0o100)
    groups = {user.gid, *(g.gr_gid for g in grp.getgrall() if user.name in g.gr_mem)}
    if info.st_gid in groups:
        return bool(info.st_mode & 0o010)
    return bool(info.st_mode & 0o001)


def unsearchable_directories(path: Path, user: OsUser, *, stop_at: Path) -> list[Path]:
    """``stop_at`` and its parents that ``user`` may not search (traverse), outermost first."""
    return [d for d in reversed([stop_at, *stop_at.parents]) if not _searchable(d, user)]


def wait_until_ready(url: str, timeout: float = 30.0) -> None:
    """Block until a connection to ``url`` succeeds."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def project_cluster(project_root: Path) -> LocalCluster:
    """The persistent development cluster under ``<project>/.carehub/``.

    Its port: CAREHUB_DB_PORT when set, else the one it was last started on, else 54330. A
    running server keeps its port (see ``LocalCluster.actual_port``).
    """
    from app.config import port_setting

    requested = port_setting("CAREHUB_DB_PORT", None)
    cluster = LocalCluster(
        project_root / ".carehub" / "postgres", requested or DEFAULT_PORT, boundary=project_root
    )
    if requested is None:
        cluster.port = cluster.configured_port() or DEFAULT_PORT
    return cluster
