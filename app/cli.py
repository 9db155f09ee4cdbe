"""The `carehub` command: the local database, migrations, the service and the worker."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import click

from app.config import PROJECT_ROOT, ConfigError, Settings
from app.localdb import ClusterError, LocalCluster, project_cluster, wait_until_ready
from app.migrate import MigrationError, Migrator
from app.webhooks.lifefile import PATH as LIFEFILE_PATH
from app.webhooks.lifefile_cli import webhooks

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
    return url


def _cluster() -> LocalCluster:
    return project_cluster(PROJECT_ROOT)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
def main(verbose: bool) -> None:
    """carehub: database and back-end service of the care-coordination product."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


main.add_command(webhooks)


@main.group()
def db() -> None:
    """The local database and migrations."""


@db.command("start")
def db_start() -> None:
    """Create (first time) and start the local cluster under .carehub/; print DATABASE_URL."""
    cluster = _cluster()
    try:
        started = cluster.start()
    except ClusterError as exc:
        _fail(str(exc))
    click.echo(("started" if started else "already running") + f" ({cluster.data})")
    click.echo(f"DATABASE_URL={cluster.url()}")


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
    running = cluster.is_running()
    click.echo(("running" if running else "stopped") + f" ({cluster.data})")
    click.echo(f"DATABASE_URL={cluster.url()}")
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
def db_migrate(database_url: str | None, seed: bool, dry_run: bool, lock_timeout: str) -> None:
    """Apply the Supabase bootstrap (non-Supabase databases only) and pending migrations."""
    migrate(_database_url(database_url), seed=seed, dry_run=dry_run, lock_timeout=lock_timeout)


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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    type=int,
    default=lambda: int(os.environ.get("PORT", 8000)),
    show_default="8000 or $PORT",
)
@click.option(
    "--workers",
    type=int,
    default=lambda: int(os.environ.get("WEB_CONCURRENCY", 2)),
    show_default="2 or $WEB_CONCURRENCY",
)
@click.option("--threads", type=int, default=4, show_default=True)
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Run the HTTP service under gunicorn."""
    from app.server import serve as run_server

    _settings()  # fail now, naming the missing setting, rather than in every worker
    run_server(host, port, workers, threads)


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
@click.option(
    "--port",
    type=int,
    default=lambda: int(os.environ.get("PORT", 8000)),
    show_default="8000 or $PORT",
)
def run(port: int) -> None:
    """Local development: start the database, migrate, seed, then the service and worker."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        cluster = _cluster()
        try:
            cluster.start()
        except ClusterError as exc:
            _fail(str(exc))
        url = cluster.url()
        wait_until_ready(url)
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
    click.echo(f"DATABASE_URL={url}")
    click.echo(f"service: http://127.0.0.1:{port}/healthz")
    click.echo(f"Lifefile webhook: http://127.0.0.1:{port}{LIFEFILE_PATH}{lifefile}")
    click.echo(
        "  send a test event:  "
        + (f"LIFEFILE_WEBHOOK_SECRET={DEV_LIFEFILE_SECRET} " if lifefile else "")
        + f"PORT={port} "
        "carehub webhooks send-test --status shipped --order LF-DEMO-1001"
    )
    click.echo("  then:               carehub webhooks list")
    click.echo("demo accounts: see README.md (Seed data). Ctrl-C stops everything.")
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
