"""The embedded cluster and the `carehub db` commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from app import cli, localdb
from app.localdb import ClusterError, LocalCluster, OsUser, free_port, project_cluster
from tests.helpers import PROJECT_ROOT, TestDatabase


@pytest.fixture
def cluster_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="carehub-cli-"))
    root.chmod(0o755)
    yield root
    LocalCluster(root / "pg", 0).destroy()
    shutil.rmtree(root, ignore_errors=True)


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


QUICK = {"fsync": "off", "shared_buffers": "'32MB'"}


def test_a_malformed_carehub_db_port_is_named_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAREHUB_DB_PORT", "abc")
    for args in (["db", "status"], ["db", "start"], ["db", "stop"]):
        result = CliRunner().invoke(cli.main, args)
        assert result.exit_code == 1, result.output
        assert "CAREHUB_DB_PORT must be a TCP port number (1-65535), got 'abc'" in result.output
        assert result.exc_info is None or result.exc_info[0] is SystemExit


def test_status_and_start_report_the_port_the_running_cluster_listens_on(
    cluster_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `CAREHUB_DB_PORT=<port> make run`, then `carehub db status` in a new shell (no setting).
    project = cluster_root / "checkout"
    project.mkdir()

    def project_local() -> LocalCluster:
        cluster = project_cluster(project)
        cluster.settings.update(QUICK)
        return cluster

    monkeypatch.setattr(cli, "_cluster", project_local)
    runner = CliRunner()
    first_port, other_port = free_port(), free_port()
    monkeypatch.setenv("CAREHUB_DB_PORT", str(first_port))
    started = runner.invoke(cli.main, ["db", "start"])
    assert started.exit_code == 0, started.output
    assert started.output.startswith(f"started on port {first_port}")
    try:
        monkeypatch.delenv("CAREHUB_DB_PORT")
        status = runner.invoke(cli.main, ["db", "status"])
        assert status.exit_code == 0, status.output
        assert status.output.startswith(f"running on port {first_port}")
        url = next(line for line in status.output.splitlines() if line.startswith("DATABASE_URL="))
        with psycopg.connect(url.removeprefix("DATABASE_URL=")) as conn:
            assert conn.execute("select current_setting('port')").fetchone() == (str(first_port),)

        # Another port asked for while it runs: start uses the running cluster and says why.
        monkeypatch.setenv("CAREHUB_DB_PORT", str(other_port))
        again = runner.invoke(cli.main, ["db", "start"])
        assert again.exit_code == 0, again.output
        assert again.output.startswith(f"already running on port {first_port}")
        assert f":{first_port}/postgres" in again.output
        assert f"not CAREHUB_DB_PORT={other_port}" in again.output
        assert "db stop" in again.output
    finally:
        assert runner.invoke(cli.main, ["db", "stop"]).output.startswith("stopped")

    # Stopped, with no setting: it starts again on the port it was last given.
    monkeypatch.delenv("CAREHUB_DB_PORT")
    try:
        restarted = runner.invoke(cli.main, ["db", "start"])
        assert restarted.output.startswith(f"started on port {first_port}"), restarted.output
    finally:
        runner.invoke(cli.main, ["db", "stop"])


def test_directories_the_server_account_cannot_search_are_found(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    (locked / "checkout").mkdir(parents=True)
    locked.chmod(0o700)
    nobody = OsUser(65534, 65534, "nobody")
    found = localdb.unsearchable_directories(locked / "checkout", nobody, stop_at=locked)
    assert locked in found
    (locked).chmod(0o711)
    found = localdb.unsearchable_directories(locked / "checkout", nobody, stop_at=locked)
    assert locked not in found


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another account only for root")
def test_as_root_no_permission_outside_the_project_is_changed() -> None:
    base = Path(tempfile.mkdtemp(prefix="carehub-perm-"))
    try:
        base.chmod(0o755)
        locked = base / "home"
        project = locked / "checkout"
        project.mkdir(parents=True)
        locked.chmod(0o700)
        cluster = LocalCluster(project / ".carehub" / "postgres", free_port(), boundary=project)
        with pytest.raises(ClusterError) as failure:
            cluster.start()
        message = str(failure.value)
        assert f"chmod o+x {locked}" in message
        assert "does not change permissions outside the project" in message
        assert locked.stat().st_mode & 0o777 == 0o700
        assert base.stat().st_mode & 0o777 == 0o755

        # Once the owner allows it, the cluster starts; carehub fixed only its own folders.
        locked.chmod(0o711)
        project_mode = project.stat().st_mode
        try:
            assert cluster.start()
        finally:
            cluster.stop(mode="immediate")
        assert locked.stat().st_mode & 0o777 == 0o711
        assert project.stat().st_mode == project_mode
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_test_run_leaves_no_cluster_folder_behind(cluster_root: Path) -> None:
    # cluster_root, not tmp_path: the test cluster's server may run as another account, which
    # cannot search pytest's private tmp folders.
    env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
    env["TMPDIR"] = str(cluster_root)
    test = "tests/foundation/test_localdb.py::test_db_migrate_twice_applies_nothing_the_second_time"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert list(cluster_root.glob("carehub-test-*")) == []
