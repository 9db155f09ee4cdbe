"""The Flask service: settings, /healthz, and the real gunicorn server."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
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
from tests.helpers import PROJECT_ROOT, CarehubProcess, TestDatabase


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
        # The commands the banner prints work as printed, in a new shell whose PATH lacks the
        # virtualenv (`make run` does not activate it).
        commands = re.findall(r"^  (?:send a test event|then): +(.+)$", process.output, re.M)
        assert len(commands) == 2, process.output
        assert all(".venv/bin/carehub " in c or c.startswith("carehub ") for c in commands)
        path = os.pathsep.join(
            d for d in os.environ.get("PATH", "").split(os.pathsep) if ".venv" not in d
        )
        shell_env = {"PATH": path, "HOME": os.environ.get("HOME", "/")}
        for command in commands:
            result = subprocess.run(  # noqa: S602 (the banner's own text, as a user pastes it)
                command,
                shell=True,
                cwd=PROJECT_ROOT,
                env=shell_env,
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"
    finally:
        process.stop(signal.SIGINT)
    assert "applied seed seed.sql" in process.output
    process.wait_for_line("worker: stopped", timeout=0)


def test_pool_min_size_above_max_size_names_both_settings() -> None:
    with pytest.raises(
        ConfigError, match=r"DB_POOL_MIN_SIZE \(5\) is above DB_POOL_MAX_SIZE \(2\)"
    ):
        Settings.from_env(
            {"DATABASE_URL": "postgresql://x", "DB_POOL_MIN_SIZE": "5", "DB_POOL_MAX_SIZE": "2"}
        )


def test_malformed_database_url_shows_the_expected_form() -> None:
    with pytest.raises(ConfigError) as failure:
        Settings.from_env({"DATABASE_URL": "localhost:5432/postgres"})
    message = str(failure.value)
    assert message.startswith("DATABASE_URL is malformed")
    assert "expected postgresql://USER:PASSWORD@HOST:PORT/DBNAME" in message
    assert 'missing "="' not in message


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"PORT": "abc"}, "PORT must be a TCP port number (1-65535), got 'abc'"),
        ({"WEB_CONCURRENCY": "two"}, "WEB_CONCURRENCY must be a whole number, got 'two'"),
        (
            {"DB_POOL_MIN_SIZE": "20", "DB_POOL_MAX_SIZE": "10"},
            "DB_POOL_MIN_SIZE (20) is above DB_POOL_MAX_SIZE (10)",
        ),
        (
            {"DATABASE_URL": "postgres@localhost/db"},
            "DATABASE_URL is malformed (it is not a connection URL): expected postgresql://",
        ),
    ],
    ids=["PORT", "WEB_CONCURRENCY", "DB_POOL_MIN_SIZE", "DATABASE_URL"],
)
@pytest.mark.parametrize("command", ["serve", "run"])
def test_a_malformed_setting_stops_the_command_naming_it_without_a_traceback(
    setting: dict[str, str], message: str, command: str
) -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres", **setting}
    process = CarehubProcess(command, env=env)
    assert process.process.wait(timeout=60) == 1, process.output
    process.wait_for_line(f"error: {message}", timeout=10)
    assert "Traceback" not in process.output
    assert "service: http" not in process.output


@pytest.mark.parametrize("command", ["serve", "run"])
def test_a_taken_http_port_is_named_before_anything_starts(command: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres",
            "PORT": str(port),
        }
        process = CarehubProcess(command, env=env)
        assert process.process.wait(timeout=30) == 1, process.output
    process.wait_for_line(f"error: HTTP port {port} on 127.0.0.1 is taken", timeout=10)
    assert "set PORT to a free port" in process.output
    assert "service: http" not in process.output  # no banner promising a URL
    assert "Retrying" not in process.output  # no gunicorn bind retries


def test_unknown_path_and_wrong_method_answer_json(app: Flask) -> None:
    client = app.test_client()
    missing = client.get("/no/such/path")
    assert missing.status_code == 404
    assert missing.is_json
    assert missing.get_json()["error"] == "not_found"
    wrong = client.delete("/healthz")
    assert wrong.status_code == 405
    assert wrong.is_json
    assert wrong.get_json()["error"] == "method_not_allowed"
    assert "GET" in wrong.headers["Allow"]
