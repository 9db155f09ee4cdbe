"""Command-line mistakes a newcomer makes get a message to act on: --database-url accepted in the
same place by every command, a malformed DATABASE_URL shown with the expected form."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from app import cli
from tests.helpers import CarehubProcess, TestDatabase


@pytest.mark.parametrize(
    "args",
    [
        ["webhooks", "list", "--database-url", "{url}"],
        ["webhooks", "--database-url", "{url}", "list"],
        ["webhooks", "replay", "--status", "failed", "--database-url", "{url}"],
    ],
    ids=["after the subcommand", "before the subcommand", "replay"],
)
def test_webhooks_take_database_url_before_or_after_the_subcommand(
    database: TestDatabase, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(cli.main, [a.format(url=database.url) for a in args])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("no ")


@pytest.mark.parametrize(
    "args",
    [["db", "migrate", "--database-url", "{url}"], ["db", "--database-url", "{url}", "migrate"]],
    ids=["after the subcommand", "before the subcommand"],
)
def test_db_migrate_takes_database_url_before_or_after_the_subcommand(
    database: TestDatabase, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(cli.main, [a.format(url=database.url) for a in args])
    assert result.exit_code == 0, result.output
    assert "nothing to apply" in result.output


def test_replay_without_an_event_or_a_status_says_to_give_one(database: TestDatabase) -> None:
    result = CliRunner().invoke(cli.main, ["webhooks", "replay", "--database-url", database.url])
    assert result.exit_code == 2
    assert "give an event id or --status" in result.output
    assert "not both" not in result.output


@pytest.mark.parametrize(
    "args",
    [["webhooks", "list"], ["webhooks", "show", "00000000-0000-4000-8000-000000000001"]],
    ids=["list", "show"],
)
def test_a_malformed_database_url_shows_the_expected_form(args: list[str]) -> None:
    env = {**os.environ, "DATABASE_URL": "localhost:5432/postgres"}
    process = CarehubProcess(*args, env=env)
    assert process.process.wait(timeout=30) == 1, process.output
    process.wait_for_line("DATABASE_URL is malformed", timeout=10)
    assert "expected postgresql://USER:PASSWORD@HOST:PORT/DBNAME" in process.output
    assert 'missing "="' not in process.output
    assert "Traceback" not in process.output


def test_db_migrate_with_a_malformed_url_shows_the_expected_form() -> None:
    result = CliRunner().invoke(
        cli.main, ["db", "migrate", "--database-url", "postgresql://me:secret@host:port/db"]
    )
    assert result.exit_code == 1
    assert "--database-url is malformed (its port 'port' is not a number)" in result.output
    assert "expected postgresql://USER:PASSWORD@HOST:PORT/DBNAME" in result.output
    assert "secret" not in result.output
