"""Factories and helpers for the Lifefile webhook tests: a sent prescription ticket with its
people, signed requests in both payload shapes, and reading the inbox."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from flask import Flask
from flask.testing import FlaskClient
from psycopg.rows import dict_row
from werkzeug.test import TestResponse

from app import create_app
from app.config import Settings
from app.db import EXTENSION_KEY as POOL_KEY
from app.webhooks.lifefile_auth import sign
from tests.helpers import create_provider, create_user

PATH = "/api/webhooks/lifefile/prescription-status"
SECRET = "test-lifefile-secret"


@dataclass(frozen=True)
class PrescriptionTicket:
    ticket_id: uuid.UUID
    prescription_id: uuid.UUID
    patient: uuid.UUID
    doctor: uuid.UUID
    pharmacist: uuid.UUID
    practice: uuid.UUID
    pharmacy: uuid.UUID
    order_id: str | None
    rx_number: str | None


def create_prescription_ticket(
    conn: psycopg.Connection,
    *,
    order_id: str | None = None,
    rx_number: str | None = None,
    send: bool = True,
    medication: str = "Amoxicillin 500 mg",
    quantity: int = 30,
) -> PrescriptionTicket:
    """A doctor's prescription ticket for a patient at a pharmacy, sent unless ``send`` is
    false; the prescription carries Lifefile's order id and rx number when given."""
    patient = create_user(conn, "patient", full_name="Pat Patient")
    doctor = create_user(conn, "doctor", full_name="Dr Who")
    pharmacist = create_user(conn, "pharmacist", full_name="Phil Pharmacist")
    practice = create_provider(conn, "doctor", owner=doctor)
    pharmacy = create_provider(conn, "pharmacy", owner=pharmacist)
    prescription_id = _one(
        conn,
        "insert into public.prescriptions (doctor_id, pharmacy_id, patient_id, medications,"
        " external_order_id, rx_number) values (%s, %s, %s, %s, %s, %s) returning id",
        [doctor, pharmacy, patient, json.dumps([{"name": medication}]), order_id, rx_number],
    )
    conn.execute(
        "insert into public.prescription_items (prescription_id, medication_name, quantity)"
        " values (%s, %s, %s)",
        [prescription_id, medication, quantity],
    )
    ticket_id = _one(
        conn,
        "insert into public.healthcare_tickets (ticket_type, status, patient_id,"
        " primary_provider_id, secondary_provider_id, required_provider_kind, prescription_id,"
        " created_by, title) values ('prescription', 'created', %s, %s, %s, 'pharmacy', %s,"
        " %s, 'Prescription') returning id",
        [patient, practice, pharmacy, prescription_id, doctor],
    )
    ticket = PrescriptionTicket(
        ticket_id,
        prescription_id,
        patient,
        doctor,
        pharmacist,
        practice,
        pharmacy,
        order_id,
        rx_number,
    )
    if send:
        send_ticket(conn, ticket)
    return ticket


def send_ticket(conn: psycopg.Connection, ticket: PrescriptionTicket) -> None:
    """The doctor sends the ticket to the pharmacy (as the system would on their behalf)."""
    conn.execute(
        "update public.healthcare_tickets set status = 'sent' where id = %s", [ticket.ticket_id]
    )


def _one(conn: psycopg.Connection, query: str, params: list[Any]) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def event(
    status: str,
    *,
    order_id: str | None = None,
    rx_number: str | None = None,
    changed_at: str = "2026-11-20T10:00:00Z",
    previous: str | None = None,
    tracking: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An event of the fulfilment plan's shape (seed 001)."""
    prescription: dict[str, Any] = {"medicationName": "Amoxicillin 500 mg", "quantity": 30}
    if order_id is not None:
        prescription["orderId"] = order_id
    if rx_number is not None:
        prescription["rxNumber"] = rx_number
    body: dict[str, Any] = {
        "eventType": "prescription.status.update",
        "timestamp": changed_at,
        "prescription": prescription,
        "status": {"current": status, "previous": previous, "changedAt": changed_at},
        **extra,
    }
    if tracking is not None:
        body["tracking"] = tracking
    return body


def data_push_element(
    rx_status: str, *, order_id: str | None = None, rx_number: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One element of Lifefile's Data Push array."""
    element: dict[str, Any] = {"fillId": 9001, "rxStatus": rx_status, "orderStatus": None}
    if order_id is not None:
        element["orderId"] = order_id
    if rx_number is not None:
        element["rxNumber"] = rx_number
    element.update(extra)
    return element


def signed_headers(
    body: bytes, secret: str = SECRET, timestamp: str | None = None, prefix: str = "sha256="
) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "x-lifefile-signature": prefix + sign(secret, body, timestamp),
    }
    if timestamp is not None:
        headers["x-lifefile-timestamp"] = timestamp
    return headers


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def inbox(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every inbox row, in arrival order."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("select * from private.lifefile_webhook_events order by seq").fetchall()


def process_all(conn: psycopg.Connection) -> int:
    """What the worker does: process every due event; returns how many."""
    total = 0
    while True:
        row = conn.execute("select private.process_lifefile_events(100)").fetchone()
        assert row is not None
        total += row[0]
        if row[0] == 0:
            return total


def ticket_status(conn: psycopg.Connection, ticket_id: uuid.UUID) -> str:
    return _one(conn, "select status from public.healthcare_tickets where id = %s", [ticket_id])


@contextmanager
def lifefile_app(database_url: str, **overrides: Any) -> Iterator[Flask]:
    """The service (Flask app and its pool) on ``database_url``, signed with SECRET and with
    no rate limit unless ``overrides`` say otherwise; its pool is closed afterwards."""
    settings = Settings(
        database_url=database_url,
        lifefile_webhook_secrets=(SECRET,),
        lifefile_rate_limit=None,
        lifefile_unauthenticated_rate_limit=None,
        pool_timeout=2.0,
    )
    app = create_app(replace(settings, **overrides))
    app.config["TESTING"] = True
    try:
        yield app
    finally:
        app.extensions[POOL_KEY].close()


def post_event(client: FlaskClient, payload: Any, **header_overrides: str) -> TestResponse:
    """POST ``payload`` (JSON-encoded unless bytes) signed with SECRET."""
    body = payload if isinstance(payload, bytes) else encode(payload)
    headers = {**signed_headers(body), **header_overrides}
    return client.post(PATH, data=body, headers=headers)
