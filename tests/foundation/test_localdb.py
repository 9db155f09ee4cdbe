"""The embedded cluster and the `carehub db` commands."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from app import cli, localdb
from app.localdb import ClusterError, LocalCluster, free_port
from tests.helpers import TestDatabase


@pytest.fixture
def cluster_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="carehub-cli-"))
    root.chmod(0o755)
    yield root
    LocalCluster(root / "pg", 0).destroy()


@pytest.fixture
def cluster(cluster_root: Path, monkeypatch: pytest.MonkeyPatch) -> LocalCluster:
    """The cluster `carehub db ...` manages, moved to a temporary folder."""
    target = LocalCluster(
        cluster_root / "pg", free_port(), settings={"fsync": "off", "shared_buffers": "'32MB'"}
    )
    monkeypatch.setattr(cli, "_cluster", lambda: target)
    return target


def test_db_start_status_stop(cluster: LocalCluster) -> None:
    runner = CliRunner()
    first = runner.invoke(cli.main, ["db", "start"])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("started")
    assert f"DATABASE_URL={cluster.url()}" in first.output
    with psycopg.connect(cluster.url()) as conn:
        assert conn.execute("select 1").fetchone() == (1,)

    again = runner.invoke(cli.main, ["db", "start"])
    assert again.exit_code == 0
    assert again.output.startswith("already running")

    status = runner.invoke(cli.main, ["db", "status"])
    assert status.exit_code == 0
    assert status.output.startswith("running")

    stop = runner.invoke(cli.main, ["db", "stop"])
    assert stop.output.startswith("stopped")
    status = runner.invoke(cli.main, ["db", "status"])
    assert status.exit_code == 3
    assert status.output.startswith("stopped")


def test_server_runs_as_an_unprivileged_account(cluster: LocalCluster) -> None:
    cluster.start()
    owner = cluster.data.stat().st_uid
    assert owner == os.geteuid() if os.geteuid() != 0 else owner != 0
    with psycopg.connect(cluster.url()) as conn:
        row = conn.execute("select current_setting('data_directory')").fetchone()
    assert row == (str(cluster.data),)


def test_status_of_a_cluster_never_created(cluster: LocalCluster) -> None:
    result = CliRunner().invoke(cli.main, ["db", "status"])
    assert result.exit_code == 3
    assert "not created" in result.output


def test_missing_server_binaries_name_the_install_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(localdb.shutil, "which", lambda _name: None)
    monkeypatch.setattr(localdb.glob, "glob", lambda _pattern: [])
    with pytest.raises(ClusterError) as failure:
        localdb.find_bin_dir()
    message = str(failure.value)
    assert "apt-get install postgresql" in message
    assert "brew install postgresql@15" in message
    assert "supabase start" in message


def test_db_start_without_binaries_fails_with_the_hint(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localdb.shutil, "which", lambda _name: None)
    monkeypatch.setattr(localdb.glob, "glob", lambda _pattern: [])
    result = CliRunner().invoke(cli.main, ["db", "start"])
    assert result.exit_code == 1
    assert "apt-get install postgresql" in result.output


def test_db_migrate_without_a_database_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(cli.main, ["db", "migrate"])
    assert result.exit_code == 1
    assert "pass --database-url or set DATABASE_URL" in result.output


def test_db_migrate_reports_the_failing_file_and_line_and_exits_non_zero(
    empty_database: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "20990101000000_broken.sql").write_text("select 1;\nselect nonsense from;\n")
    monkeypatch.setattr(cli, "MIGRATIONS", folder)
    result = CliRunner().invoke(cli.main, ["db", "migrate", "--database-url", empty_database.url])
    assert result.exit_code == 1
    assert "error: 20990101000000_broken.sql:2: ERROR 42601: syntax error" in result.output


def test_db_migrate_twice_applies_nothing_the_second_time(empty_database: TestDatabase) -> None:
    runner = CliRunner()
    first = runner.invoke(cli.main, ["db", "migrate", "--database-url", empty_database.url])
    assert first.exit_code == 0, first.output
    second = runner.invoke(cli.main, ["db", "migrate", "--database-url", empty_database.url])
    assert second.exit_code == 0
    assert "nothing to apply" in second.output
    assert "applied" not in second.output


def test_db_migrate_on_an_unreachable_database_fails_cleanly() -> None:
    url = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/postgres"
    result = CliRunner().invoke(cli.main, ["db", "migrate", "--database-url", url])
    assert result.exit_code == 1
    assert "cannot migrate" in result.output
    assert "secret" not in result.output
