"""Fixtures of the user-endpoint tests: the service with token verification configured, a JWKS
double on loopback, and a small world of tickets seen differently by each user."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from flask import Flask

from app import create_app
from app.config import Settings
from app.db import EXTENSION_KEY as POOL_KEY
from tests.api.jwt_double import HS_SECRET, JwksDouble, SigningKey, jwks_server, new_key
from tests.helpers import TestDatabase, create_user
from tests.lifefile.factories import PrescriptionTicket, create_prescription_ticket


@pytest.fixture
def signing_key() -> SigningKey:
    return new_key("ES256")


@pytest.fixture
def jwks(signing_key: SigningKey) -> Iterator[JwksDouble]:
    with jwks_server(signing_key, new_key("RS256")) as double:
        yield double


def make_app(database_url: str, **settings: object) -> Iterator[Flask]:
    app = create_app(Settings(database_url=database_url, pool_timeout=2.0, **settings))
    app.testing = True
    try:
        yield app
    finally:
        app.extensions[POOL_KEY].close()


@pytest.fixture
def app(database: TestDatabase, jwks: JwksDouble) -> Iterator[Flask]:
    yield from make_app(database.url, supabase_jwt_secret=HS_SECRET, supabase_jwks_url=jwks.url)


@dataclass
class World:
    first: PrescriptionTicket
    second: PrescriptionTicket
    stranger: uuid.UUID
    admin: uuid.UUID


@pytest.fixture
def world(conn: psycopg.Connection) -> World:
    return World(
        create_prescription_ticket(conn, order_id="LF-1"),
        create_prescription_ticket(conn, order_id="LF-2"),
        create_user(conn, "patient"),
        create_user(conn, "admin"),
    )
