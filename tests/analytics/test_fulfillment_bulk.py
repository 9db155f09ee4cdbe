"""The fact triggers run once per statement: a statement inserting, updating or deleting many
tracking rows leaves exactly the facts and dirty periods that the same rows changed one at a
time leave, and an update of columns analytics does not read writes and marks nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, NamedTuple

import psycopg
import pytest

from tests.analytics.factories import add_prescription, create_pharmacy

NY = "America/New_York"
KIRITIMATI = "Pacific/Kiritimati"
LONDON = "Europe/London"

# Local timelines around the end of daylight saving (2026-10-25 in London, 11-01 in New York)
# and month ends, so shifting a time moves it to another local day, week or month.
TIMELINES: tuple[tuple[str, dict[str, str]], ...] = (
    (NY, {"sent_at": "2026-10-30 09:00", "received_at": "2026-10-30 22:00",
          "processing_at": "2026-10-31 01:00", "shipped_at": "2026-10-31 23:00",
          "delivered_at": "2026-11-02 10:00", "estimated_delivery": "2026-11-03 12:00"}),
    (NY, {"sent_at": "2026-10-31 08:00", "received_at": "2026-10-31 09:00",
          "processing_at": "2026-10-31 12:00", "estimated_delivery": "2026-11-04 12:00"}),
    (KIRITIMATI, {"sent_at": "2026-11-01 05:00", "received_at": "2026-11-01 06:00",
                  "processing_at": "2026-11-01 08:00", "shipped_at": "2026-11-02 07:00"}),
    (KIRITIMATI, {"sent_at": "2026-10-28 10:00", "received_at": "2026-10-28 11:00",
                  "completed_at": "2026-10-29 16:00"}),
    (LONDON, {"sent_at": "2026-10-24 21:00", "received_at": "2026-10-24 23:30",
              "processing_at": "2026-10-25 01:30", "shipped_at": "2026-10-25 09:00",
              "estimated_delivery": "2026-10-27 12:00"}),
    (LONDON, {"sent_at": "2026-10-26 09:00", "received_at": "2026-10-26 10:00",
              "cancelled_at": "2026-10-26 15:00"}),
    # Only sent: the shifts below (null + interval) leave its analytics columns as they are.
    (NY, {"sent_at": "2026-10-29 09:00"}),
)  # fmt: skip

# One statement over the rows `where` picks: receipts and shipments a day later (nearly: some
# cross midnight, a week or a month), one prescription moved to another pharmacy in another
# zone, one left without a pharmacy, one cancelled.
SHIFT = """
update public.prescription_tracking set
    received_at = received_at + interval '20 hours',
    shipped_at = shipped_at + interval '1 day',
    pharmacy_id = case id when %(moved)s then %(other)s when %(unassigned)s then null
        else pharmacy_id end,
    cancelled_at = case when id = %(cancelled)s then received_at + interval '2 hours'
        else cancelled_at end
where {where}
"""

Statements = Sequence[tuple[str, dict[str, Any]]]


class Outcome(NamedTuple):
    facts: set[tuple[Any, ...]]
    dirty: set[tuple[uuid.UUID, str, date]]
    markings: int


@pytest.fixture
def tracked(conn: psycopg.Connection) -> dict[str, Any]:
    """The timelines at one pharmacy per zone, their dirty markings consumed."""
    pharmacies = {zone: create_pharmacy(conn, zone)[0] for zone in (NY, KIRITIMATI, LONDON)}
    ids = [add_prescription(conn, pharmacies[zone], zone, **times) for zone, times in TIMELINES]
    conn.execute("delete from private.fulfillment_dirty_periods")
    return {"ids": ids, "pharmacies": pharmacies}


def facts(conn: psycopg.Connection) -> set[tuple[Any, ...]]:
    return set(conn.execute("select * from private.fulfillment_facts"))


def facts_of_each_row(conn: psycopg.Connection) -> set[tuple[Any, ...]]:
    """What private.fulfillment_fact_rows gives for each tracking row as it now is."""
    return set(
        conn.execute(
            "select r.* from public.prescription_tracking as t"
            " join public.providers as p on p.id = t.pharmacy_id"
            " cross join lateral private.fulfillment_fact_rows(t, p.timezone) as r"
        )
    )


def outcome(conn: psycopg.Connection, statements: Statements) -> Outcome:
    """The facts and dirty markings the statements leave (undone afterwards)."""
    with conn.transaction(force_rollback=True):
        for query, params in statements:
            conn.execute(query, params)
        dirty = conn.execute(
            "select pharmacy_id, grain, period_start from private.fulfillment_dirty_periods"
        ).fetchall()
        assert facts(conn) == facts_of_each_row(conn)
        return Outcome(facts(conn), set(dirty), len(dirty))


def periods_of(facts: set[tuple[Any, ...]]) -> set[tuple[uuid.UUID, str, date]]:
    """The day, week (from Monday) and month of each fact's pharmacy and day."""
    return {
        period
        for _, _, pharmacy, day, *_ in facts
        for period in (
            (pharmacy, "day", day),
            (pharmacy, "week", day - timedelta(days=day.weekday())),
            (pharmacy, "month", day.replace(day=1)),
        )
    }


def test_a_multi_row_update_leaves_what_row_by_row_updates_leave(
    conn: psycopg.Connection, tracked: dict[str, Any]
) -> None:
    ids = tracked["ids"]
    picks = {
        "moved": ids[0],
        "other": tracked["pharmacies"][KIRITIMATI],
        "unassigned": ids[2],
        "cancelled": ids[4],
    }
    before = facts(conn)
    together = outcome(conn, [(SHIFT.format(where="id = any(%(ids)s)"), {**picks, "ids": ids})])
    one_by_one = outcome(
        conn, [(SHIFT.format(where="id = %(id)s"), {**picks, "id": i}) for i in ids]
    )
    assert (together.facts, together.dirty) == (one_by_one.facts, one_by_one.dirty)
    assert together.facts != before
    # Every period an old or new fact of a changed row falls in, each marked once; the
    # only-sent prescription (the last) did not change, so its day is not among them.
    changed = set(ids[:-1])
    assert together.dirty == periods_of({f for f in before | together.facts if f[0] in changed})
    assert together.markings == len(together.dirty)
    assert (tracked["pharmacies"][NY], "day", date(2026, 10, 29)) not in together.dirty


def test_a_multi_row_insert_and_delete_leave_what_row_by_row_ones_leave(
    conn: psycopg.Connection, tracked: dict[str, Any]
) -> None:
    ids = tracked["ids"]
    columns = ", ".join(
        name
        for (name,) in conn.execute(
            "select attname from pg_attribute"
            " where attrelid = 'public.prescription_tracking'::regclass"
            " and attnum > 0 and not attisdropped and attgenerated = '' order by attnum"
        )
    )
    before = facts(conn)
    conn.execute("create temporary table saved as select * from public.prescription_tracking")
    # Re-inserted without a pharmacy: it has no facts.
    conn.execute("update saved set pharmacy_id = null where id = %s", [ids[1]])
    delete = "delete from public.prescription_tracking where id = any(%(ids)s)"
    insert = (
        f"insert into public.prescription_tracking ({columns})"
        f" select {columns} from saved where id = any(%(ids)s)"
    )
    each = [{"ids": [i]} for i in ids]

    deleted = outcome(conn, [(delete, {"ids": ids})])
    assert deleted[:2] == outcome(conn, [(delete, p) for p in each])[:2]
    assert deleted.facts == set()
    assert deleted.dirty == periods_of(before)
    assert deleted.markings == len(deleted.dirty)

    reinserted = outcome(conn, [(delete, {"ids": ids}), (insert, {"ids": ids})])
    row_by_row = outcome(conn, [(delete, p) for p in each] + [(insert, p) for p in each])
    assert reinserted[:2] == row_by_row[:2]
    assert reinserted.facts == {f for f in before if f[0] != ids[1]}
    assert reinserted.dirty == periods_of(before)


def test_an_update_of_columns_analytics_does_not_read_writes_and_marks_nothing(
    conn: psycopg.Connection, tracked: dict[str, Any]
) -> None:
    before = facts(conn)
    updated = conn.execute(
        "update public.prescription_tracking set tracking_number = 'TRK-1', carrier = 'UPS',"
        " received_at = received_at"
    ).rowcount
    assert updated == len(tracked["ids"])
    assert facts(conn) == before
    assert conn.execute("select count(*) from private.fulfillment_dirty_periods").fetchone()[0] == 0
