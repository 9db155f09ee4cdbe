"""The `carehub` command: the local database, migrations, the service and the worker."""

from __future__ import annotations

import errno
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
import psycopg

from app.config import (
    PROJECT_ROOT,
    ConfigError,
    Settings,
    check_database_url,
    env_int,
    port_setting,
)
from app.localdb import ClusterError, LocalCluster, project_cluster, wait_until_ready
from app.messaging_cli import add_provider_option, notifications, twilio_group
from app.migrate import MigrationError, Migrator
from app.webhooks.lifefile import PATH as LIFEFILE_PATH
from app.webhooks.lifefile_cli import webhooks

T = TypeVar("T")

MIGRATIONS = PROJECT_ROOT / "supabase" / "migrations"
# `carehub run` signs local test events with this when no Lifefile setting is given. Never use
# it anywhere else: it is in the source code.
DEV_LIFEFILE_SECRET = "carehub-dev-lifefile-secret"  # noqa: S105
SEED = PROJECT_ROOT / "supabase" / "seed.sql"


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _database_url(explicit: str | None) -> str:
    url = explicit or os.environ.get("DATABASE_URL", "").strip()
    if not url:
        _fail(
            "no database given: pass --database-url or set DATABASE_URL "
            "(`carehub db start` prints the local one)"
        )
    try:
        return check_database_url(url, "--database-url" if explicit else "DATABASE_URL")
    except ConfigError as exc:
        _fail(str(exc))
        raise


def _cluster() -> LocalCluster:
    try:
        return project_cluster(PROJECT_ROOT)
    except ConfigError as exc:
        _fail(str(exc))
        raise


def _setting(read: Callable[[], T]) -> T:
    """The value of a setting read from the environment; a malformed one stops us, named."""
    try:
        return read()
    except ConfigError as exc:
        _fail(str(exc))
        raise


def command_hint() -> str:
    """How to type the `carehub` command in a new shell: `carehub` when that is on PATH (an
    activated virtualenv), else the console script's path (`.venv/bin/carehub` after make)."""
    script = Path(sys.executable).parent / "carehub"
    if not script.exists():
        return f"{sys.executable} -m app"
    on_path = shutil.which("carehub")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "carehub"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _port_mismatch_note(cluster: LocalCluster) -> str:
    requested = os.environ.get("CAREHUB_DB_PORT", "").strip()
    if requested and requested != str(cluster.port):
        return (
            f"note: the local cluster runs on port {cluster.port}, not CAREHUB_DB_PORT="
            f"{requested}; it keeps its port until `{command_hint()} db stop`, then "
            f"`CAREHUB_DB_PORT={requested} {command_hint()} db start` moves it"
        )
    return ""


def _check_port_free(host: str, port: int) -> None:
    """Stop, naming PORT, when nothing can listen on host:port (before any banner)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        _fail(f"cannot listen on {host}:{port}: {exc}")
        return
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # What gunicorn sets, so a port in TIME_WAIT does not count as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                _fail(
                    f"HTTP port {port} on {host} is taken (another `carehub run` or service?): "
                    f"stop it, or set PORT to a free port (e.g. PORT={port + 1} make run)"
                )
            _fail(f"cannot listen on {host}:{port} ({exc.strerror}); set PORT to another port")


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
def main(verbose: bool) -> None:
    """carehub: database and back-end service of the care-coordination product."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _store_database_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    obj = ctx.find_object(dict)
    if obj is None:
        return
    if value:
        obj["database_url"] = value
    url = obj.get("database_url") or os.environ.get("DATABASE_URL", "").strip()
    if url:
        name = "--database-url" if obj.get("database_url") else "DATABASE_URL"
        try:
            check_database_url(url, name)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None


def _database_url_after_subcommand(group: click.Group, *, skip: tuple[str, ...] = ()) -> None:
    """Accept ``--database-url`` after the subcommand too (`carehub webhooks list
    --database-url URL`, as `carehub db migrate --database-url URL`), not only before it."""
    for name, command in group.commands.items():
        if name in skip or any(p.name == "database_url" for p in command.params):
            continue
        command.params.append(
            click.Option(
                ["--database-url"],
                expose_value=False,
                callback=_store_database_url,
                help="The database (default: $DATABASE_URL).",
            )
        )


# Patient messaging: the outbox, Twilio, and the Twilio inbox in `webhooks list --provider`.
add_provider_option(webhooks)
_database_url_after_subcommand(webhooks, skip=("send-test",))
main.add_command(webhooks)
_database_url_after_subcommand(notifications, skip=("send-test",))
main.add_command(notifications)
_database_url_after_subcommand(twilio_group)
main.add_command(twilio_group)

# `carehub backfill threads`: the legacy-thread backfill (app/backfill).
from app.backfill.cli import backfill  # noqa: E402

main.add_command(backfill)

# `carehub analytics recompute|export|report` (app/analytics_cli.py).
from app.analytics_cli import analytics  # noqa: E402

_database_url_after_subcommand(analytics)
main.add_command(analytics)


@main.group()
@click.option("--database-url", help="Target database of `db migrate` (default: $DATABASE_URL).")
@click.pass_context
def db(ctx: click.Context, database_url: str | None) -> None:
    """The local database and migrations."""
    ctx.obj = {"database_url": database_url}


@db.command("start")
def db_start() -> None:
    """Create (first time) and start the local cluster under .carehub/; print DATABASE_URL."""
    cluster = _cluster()
    try:
        started = cluster.start()
    except ClusterError as exc:
        _fail(str(exc))
    click.echo(
        ("started" if started else "already running") + f" on port {cluster.port} ({cluster.data})"
    )
    click.echo(f"DATABASE_URL={cluster.url()}")
    if note := _port_mismatch_note(cluster):
        click.echo(note)


@db.command("stop")
def db_stop() -> None:
    """Stop the local cluster."""
    try:
        stopped = _cluster().stop()
    except ClusterError as exc:
        _fail(str(exc))
    click.echo("stopped" if stopped else "not running")


@db.command("status")
def db_status() -> None:
    """Say whether the local cluster runs; print its DATABASE_URL."""
    cluster = _cluster()
    if not cluster.is_initialized():
        click.echo(f"not created (run `carehub db start`; it will live in {cluster.data})")
        sys.exit(3)
    running = cluster.adopt_running_port() is not None
    click.echo((f"running on port {cluster.port}" if running else "stopped") + f" ({cluster.data})")
    click.echo(f"DATABASE_URL={cluster.url()}")
    if running and (note := _port_mismatch_note(cluster)):
        click.echo(note)
    sys.exit(0 if running else 3)


@db.command("migrate")
@click.option("--database-url", help="Target database (default: $DATABASE_URL).")
@click.option("--seed", is_flag=True, help="Apply supabase/seed.sql afterwards.")
@click.option("--dry-run", is_flag=True, help="List what would be applied; change nothing.")
@click.option(
    "--lock-timeout",
    default="10s",
    show_default=True,
    help="Give up on a migration that waits longer than this for a table lock.",
)
@click.pass_obj
def db_migrate(
    obj: dict[str, str | None] | None,
    database_url: str | None,
    seed: bool,
    dry_run: bool,
    lock_timeout: str,
) -> None:
    """Apply the Supabase bootstrap (non-Supabase databases only) and pending migrations."""
    url = _database_url(database_url or (obj or {}).get("database_url"))
    migrate(url, seed=seed, dry_run=dry_run, lock_timeout=lock_timeout)


def migrate(
    url: str, *, seed: bool = False, dry_run: bool = False, lock_timeout: str = "10s"
) -> None:
    started = time.perf_counter()
    migrator = Migrator(url, MIGRATIONS, SEED, say=click.echo, lock_timeout=lock_timeout)
    try:
        migrator.run(dry_run=dry_run, seed=seed)
    except MigrationError as exc:
        _fail(str(exc))
    except Exception as exc:
        if exc.__class__.__module__.startswith("psycopg"):
            _fail(f"cannot migrate {_redact(url)}: {exc}")
        raise
    click.echo(f"done in {time.perf_counter() - started:.2f} s")


def _redact(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(url)
    except Exception:
        return "the database"
    params.pop("password", None)
    return make_conninfo(**params)


def _http_port(port: int | None) -> int:
    if port is not None:
        return port
    return _setting(lambda: port_setting("PORT", 8000))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), help="HTTP port  [default: $PORT or 8000]")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="gunicorn worker processes  [default: $WEB_CONCURRENCY or 2]",
)
@click.option("--threads", type=click.IntRange(min=1), default=4, show_default=True)
def serve(host: str, port: int | None, workers: int | None, threads: int) -> None:
    """Run the HTTP service under gunicorn."""
    port = _http_port(port)
    # Checked before gunicorn is imported: it reads WEB_CONCURRENCY itself, with int().
    concurrency = _setting(lambda: env_int("WEB_CONCURRENCY", 2, minimum=1))
    _settings()  # fail now, naming the missing setting, rather than in every worker
    _check_port_free(host, port)
    from app.server import serve as run_server

    run_server(host, port, workers or concurrency, threads)


@main.command()
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Lanes (threads, each with its own connection) per queue job, e.g. the Lifefile inbox.",
)
def worker(concurrency: int) -> None:
    """Run the background worker until SIGTERM or SIGINT."""
    from app.jobs import Worker, default_jobs

    settings = _settings()
    runner = Worker(settings.database_url, default_jobs(), concurrency=concurrency)
    runner.install_signal_handlers()
    runner.run_forever()


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        _fail(str(exc))
        raise


@main.command()
@click.option("--port", type=click.IntRange(1, 65535), help="HTTP port  [default: $PORT or 8000]")
def run(port: int | None) -> None:
    """Local development: start the database, migrate, seed, then the service and worker."""
    port = _http_port(port)
    # Every setting the children read, checked here so a mistake is one message, not a
    # traceback from a child process after the banner.
    _setting(lambda: env_int("WEB_CONCURRENCY", 2, minimum=1))
    _check_port_free("127.0.0.1", port)
    url = os.environ.get("DATABASE_URL", "").strip()
    local = not url
    if local:
        cluster = _cluster()
        try:
            started = cluster.start()
        except ClusterError as exc:
            _fail(str(exc))
        if not started and (note := _port_mismatch_note(cluster)):
            click.echo(
                note.replace(
                    "note: the local cluster runs", "using the running local cluster: it runs", 1
                )
            )
        url = cluster.url()
        try:
            wait_until_ready(url)
        except psycopg.OperationalError as exc:
            _fail(
                f"the local cluster on port {cluster.port} does not accept connections ({exc})."
                f" See {cluster.log}; `{command_hint()} db stop` then `make run` restarts it."
            )
    else:
        url = _setting(lambda: check_database_url(url))
    try:
        Settings.from_env({**os.environ, "DATABASE_URL": url})
    except ConfigError as exc:
        _fail(str(exc))
    migrate(url, seed=True)
    env = {**os.environ, "DATABASE_URL": url, "PORT": str(port)}
    lifefile = ""
    if (
        not env.get("LIFEFILE_WEBHOOK_SECRET", "").strip()
        and not env.get("LIFEFILE_BASIC_AUTH", "").strip()
    ):
        env["LIFEFILE_WEBHOOK_SECRET"] = DEV_LIFEFILE_SECRET
        lifefile = f" (development secret: LIFEFILE_WEBHOOK_SECRET={DEV_LIFEFILE_SECRET})"
    click.echo("")
    click.echo(f"DATABASE_URL={shlex.quote(url)}")
    click.echo(f"service: http://127.0.0.1:{port}/healthz")
    click.echo(f"Lifefile webhook: http://127.0.0.1:{port}{LIFEFILE_PATH}{lifefile}")
    carehub = command_hint()
    click.echo("in another shell (from this directory):")
    click.echo(
        "  send a test event:  "
        + (f"LIFEFILE_WEBHOOK_SECRET={DEV_LIFEFILE_SECRET} " if lifefile else "")
        + f"PORT={port} "
        f"{carehub} webhooks send-test --status shipped --order LF-DEMO-1001"
    )
    click.echo(f"  then:               {carehub} webhooks list --database-url {shlex.quote(url)}")
    # Without Twilio settings nothing is texted: the outbox shows what would be sent.
    click.echo(
        f"  messages (SMS off without TWILIO_*): {carehub} notifications list"
        f" --database-url {shlex.quote(url)}"
    )
    click.echo("demo accounts: see README.md (Seed data).")
    click.echo(
        "Ctrl-C stops the service and the worker"
        + (f"; the database keeps running (stop it: {carehub} db stop)." if local else ".")
    )
    click.echo("")
    children = [
        subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], env=env),
        subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env),
    ]
    _supervise(children)


def _supervise(children: list[subprocess.Popen[bytes]]) -> None:
    """Wait until one child exits or we are interrupted; then stop them all."""
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=25)
        except subprocess.TimeoutExpired:
            child.kill()
    failed = [c.args for c in children if c.returncode not in (0, -signal.SIGTERM)]
    if failed and not stopping:
        _fail(f"{' '.join(map(str, failed[0]))} exited; everything was stopped")
