"""The test harness: one throwaway PostgreSQL cluster per session (or TEST_DATABASE_URL), a
template database built once with the bootstrap and every migration, and a fresh database cloned
from it for each test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from app.localdb import LocalCluster, free_port
from app.migrate import Migrator
from tests.helpers import MIGRATIONS, TestDatabase

# Durability is pointless for a cluster that lives as long as the test session.
TEST_CLUSTER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A superuser URL of the server the tests use (its `postgres` database)."""
    external = os.environ.get("TEST_DATABASE_URL", "").strip()
    if external:
        yield external
        return
    root = Path(tempfile.mkdtemp(prefix="carehub-test-"))
    root.chmod(0o755)  # the server may run as another account (see app.localdb)
    try:
        cluster = LocalCluster(
            root / "pg", free_port(), auth="trust", settings=TEST_CLUSTER_SETTINGS
        )
        cluster.start()
        try:
            yield cluster.url()
        finally:
            cluster.destroy()
    finally:
        shutil.rmtree(root, ignore_errors=True)  # the cluster's folder and ours: nothing left


def database_url(server_url: str, dbname: str) -> str:
    return make_conninfo(**{**conninfo_to_dict(server_url), "dbname": dbname})


def create_database(server_url: str, name: str, template: str | None = None) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        query = sql.SQL("create database {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" template {}").format(sql.Identifier(template))
        admin.execute(query)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> Iterator[str]:
    """Name of a database holding the bootstrap and every migration (built once)."""
    name = f"carehub_template_{os.getpid()}"
    drop_database(pg_server, name)
    create_database(pg_server, name)
    Migrator(database_url(pg_server, name), MIGRATIONS, say=lambda _line: None).run()
    try:
        yield name
    finally:
        drop_database(pg_server, name)


def scratch_database(server_url: str, template: str | None = None) -> Iterator[TestDatabase]:
    """A database that lives as long as one test, cloned from ``template`` when given."""
    name = f"carehub_test_{uuid.uuid4().hex[:12]}"
    create_database(server_url, name, template=template)
    database = TestDatabase(database_url(server_url, name))
    try:
        yield database
    finally:
        database.close()
        drop_database(server_url, name)


@pytest.fixture
def empty_database(pg_server: str) -> Iterator[TestDatabase]:
    """A brand-new empty database (for migration runner tests)."""
    yield from scratch_database(pg_server)


@pytest.fixture
def database(pg_server: str, template_db: str) -> Iterator[TestDatabase]:
    """A fresh, fully migrated database of this test's own."""
    yield from scratch_database(pg_server, template_db)


@pytest.fixture
def conn(database: TestDatabase) -> psycopg.Connection:
    """A superuser connection (autocommit) to this test's database."""
    return database.connect()
