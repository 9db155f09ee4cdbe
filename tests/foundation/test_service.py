"""The Flask service: settings, /healthz, and the real gunicorn server."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
from flask import Flask

from app import create_app
from app.config import ConfigError, Settings
from app.db import EXTENSION_KEY
from app.localdb import free_port
from tests.helpers import CarehubProcess, TestDatabase


def make_app(database_url: str) -> Iterator[Flask]:
    app = create_app(Settings(database_url=database_url, pool_timeout=2.0))
    try:
        yield app
    finally:
        app.extensions[EXTENSION_KEY].close()


@pytest.fixture
def app(database: TestDatabase) -> Iterator[Flask]:
    yield from make_app(database.url)


@pytest.fixture
def unreachable_app() -> Iterator[Flask]:
    yield from make_app(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")


def test_missing_database_url_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL is not set"):
        Settings.from_env({})


def test_malformed_number_setting_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="DB_POOL_MAX_SIZE must be a whole number"):
        Settings.from_env({"DATABASE_URL": "postgresql://x", "DB_POOL_MAX_SIZE": "ten"})


def test_healthz_is_200_when_the_database_answers(app: Flask) -> None:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["database"]) == ("ok", "ok")
    # Optional features say whether they are on (the Lifefile webhook is off here).
    assert body["features"]["lifefile_webhook"].startswith("disabled")


def test_healthz_is_503_when_the_database_is_unreachable(unreachable_app: Flask) -> None:
    response = unreachable_app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def wait_for_http(url: str, running: CarehubProcess, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise AssertionError(f"process exited early:\n{running.output}")
        try:
            with urlopen(url, timeout=2) as response:  # noqa: S310 (loopback URL we built)
                return response.status
        except HTTPError as exc:
            return exc.code
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def test_serve_runs_gunicorn_and_stops_on_sigterm(database: TestDatabase) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database.url}
    server = CarehubProcess("serve", "--port", str(port), "--workers", "2", env=env)
    try:
        assert wait_for_http(f"http://127.0.0.1:{port}/healthz", server) == 200
    finally:
        returncode = server.stop(signal.SIGTERM)
    assert returncode == 0, server.output
    assert "gunicorn" in server.output.lower()
    assert "Booting worker" in server.output


def test_serve_without_database_url_stops_naming_the_setting() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    process = CarehubProcess("serve", "--port", str(free_port()), env=env)
    assert process.process.wait(timeout=30) == 1
    process.wait_for_line("DATABASE_URL is not set")


def test_run_brings_up_service_and_worker_and_ctrl_c_stops_everything(
    database: TestDatabase,
) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database.url}
    process = CarehubProcess("run", "--port", str(port), env=env)
    try:
        assert wait_for_http(f"http://127.0.0.1:{port}/healthz", process) == 200
        process.wait_for_line("worker: started")  # its signal handlers are in place
    finally:
        process.stop(signal.SIGINT)
    assert "applied seed seed.sql" in process.output
    process.wait_for_line("worker: stopped", timeout=0)
