"""Helpers for the care-flow tests: a Storage upload and a Realtime join, each as the product's
clients run them through Supabase."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from tests.helpers import as_user


def upload(
    conn: psycopg.Connection,
    user: uuid.UUID,
    name: str,
    *,
    mimetype: str = "application/pdf",
    size: int = 2048,
) -> uuid.UUID:
    """What the Storage API does for `supabase.storage.from('ticket-files').upload(name, file)`:
    insert the object row as the signed-in user (the storage.objects policies decide), owned by
    them, with the file's size and MIME type in metadata. Returns the object id."""
    with as_user(conn, user) as c:
        row = c.execute(
            "insert into storage.objects (bucket_id, name, owner, owner_id, metadata)"
            " values ('ticket-files', %s, %s, %s,"
            " jsonb_build_object('size', %s::bigint, 'mimetype', %s::text)) returning id",
            [name, user, str(user), size, mimetype],
        ).fetchone()
    assert row is not None
    return row[0]


def register(
    conn: psycopg.Connection, user: uuid.UUID, name: str, sha256: str | None = None
) -> dict[str, Any]:
    """The uploader lists the object for the ticket (supabase.rpc('register_ticket_attachment'))."""
    with as_user(conn, user) as c:
        cur = c.execute(
            "select id, ticket_id, kind, content_type, size_bytes, sha256, uploaded_by"
            " from public.register_ticket_attachment(%s, %s)",
            [name, sha256],
        )
        row = cur.fetchone()
        assert row is not None
        assert cur.description is not None
        return dict(zip([d.name for d in cur.description], row, strict=True))


def received(
    conn: psycopg.Connection, user: uuid.UUID, topic: str, event: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The broadcasts ``user`` receives on private channel ``topic``: realtime.messages read as
    Realtime authorises a join (the user's claims, realtime.topic set to the channel), oldest
    first, as (event, payload)."""
    with as_user(conn, user) as c:
        c.execute("select set_config('realtime.topic', %s, true)", [topic])
        rows = c.execute(
            "select event, payload from realtime.messages"
            " where extension = 'broadcast' and (%s::text is null or event = %s)"
            " order by inserted_at, id",
            [event, event],
        ).fetchall()
    return [(e, p) for e, p in rows]


def broadcasts(conn: psycopg.Connection, topic: str) -> list[tuple[str, dict[str, Any]]]:
    """Every broadcast row on ``topic`` as the system sees it, oldest first."""
    rows = conn.execute(
        "select event, payload from realtime.messages where topic = %s order by inserted_at, id",
        [topic],
    ).fetchall()
    return [(e, p) for e, p in rows]
