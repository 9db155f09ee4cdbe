"""Property: over random users, providers and tickets, a user reads a ticket if and only if
they are a party to it, or it is open and they may claim it. Derandomised (the same examples on
every run, in CI too), with an explicit example for each edge of visibility. Tickets are
inserted by the system, terminal statuses included, and the model's rule of when the fulfiller
became a party is checked against the row's sent_at too."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import psycopg
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

KINDS = ("pharmacy", "doctor", "specialist", "counselor")
FULFILLER = {
    "prescription": "pharmacy",
    "consultation": "doctor",
    "referral": "specialist",
    "counseling": "counselor",
}
# Terminal statuses included: the system may insert a ticket at any of them (a backfill).
STATUSES = {
    "prescription": ("created", "sent", "received", "cancelled", "delivered", "failed"),
    "consultation": ("requested", "accepted", "cancelled", "declined", "completed"),
    "referral": ("created", "sent", "accepted", "declined", "cancelled", "completed"),
    "counseling": ("open", "claimed", "scheduled", "closed"),
}
CLAIMABLE = {"consultation": "requested", "referral": "sent", "counseling": "open"}
DRAFTED = ("prescription", "referral")  # their fulfiller is a party once the ticket was sent
CATEGORIES = (None, "anxiety", "stress")


@dataclass(frozen=True)
class Provider:
    kind: str
    active: bool
    expertise: tuple[str, ...]
    members: frozenset[int]


@dataclass(frozen=True)
class Ticket:
    ticket_type: str
    status: str
    patient: int
    primary: int | None
    secondary: int | None
    category: str | None
    # For a cancelled drafted ticket: whether it was sent before it was cancelled.
    sent_first: bool = False


providers_st = st.lists(
    st.builds(
        Provider,
        kind=st.sampled_from(KINDS),
        active=st.booleans(),
        expertise=st.lists(st.sampled_from(("anxiety", "stress")), unique=True).map(tuple),
        members=st.frozensets(st.integers(0, 4), max_size=3),
    ),
    min_size=1,
    max_size=5,
)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[bool], list[Provider], list[Ticket]]:
    admins = draw(st.lists(st.booleans(), min_size=5, max_size=5))
    providers = draw(providers_st)
    tickets = []
    for _ in range(draw(st.integers(1, 5))):
        ticket_type = draw(st.sampled_from(tuple(FULFILLER)))
        fulfillers = [i for i, p in enumerate(providers) if p.kind == FULFILLER[ticket_type]]
        secondary = draw(st.sampled_from([None, *fulfillers]))
        status = draw(st.sampled_from(STATUSES[ticket_type]))
        primary = draw(st.sampled_from([None, *range(len(providers))]))
        if ticket_type == "prescription":
            # A prescription ticket goes to a named pharmacy and, once sent, needs a
            # prescription from a member of its requester.
            if secondary is None:
                status = "created"
            if status != "created" and (primary is None or not providers[primary].members):
                status = "created"
        tickets.append(
            Ticket(
                ticket_type,
                status,
                draw(st.integers(0, 4)),
                primary,
                secondary,
                draw(st.sampled_from(CATEGORIES)),
                sent_first=ticket_type in DRAFTED and status == "cancelled" and draw(st.booleans()),
            )
        )
    return admins, providers, tickets


def was_sent(ticket: Ticket) -> bool:
    """Whether the ticket's fulfiller is a party (sent_at set): always for a type without a
    draft; for a drafted one, once it left the draft for any status but cancelled, so one
    inserted at 'cancelled' was never sent, and one inserted at any other terminal status was."""
    return ticket.ticket_type not in DRAFTED or (
        ticket.status not in ("created", "cancelled") or ticket.sent_first
    )


def may_read(user: int, ticket: Ticket, admins: list[bool], providers: list[Provider]) -> bool:
    if admins[user] or ticket.patient == user:
        return True
    if ticket.primary is not None and user in providers[ticket.primary].members:
        return True
    if ticket.secondary is not None:
        return was_sent(ticket) and user in providers[ticket.secondary].members
    if CLAIMABLE.get(ticket.ticket_type) != ticket.status:
        return False
    return any(
        user in p.members
        and p.active
        and p.kind == FULFILLER[ticket.ticket_type]
        and (ticket.category is None or not p.expertise or ticket.category in p.expertise)
        for p in providers
    )


NOBODY = [False] * 5
PHARMACY = Provider("pharmacy", True, (), frozenset({1}))
DOCTOR = Provider("doctor", True, (), frozenset({2}))
ANXIETY_COUNSELOR = Provider("counselor", True, ("anxiety",), frozenset({1}))


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
# A prescription ticket at 'created' with its pharmacy set: the pharmacy sees nothing yet.
@example(world=(NOBODY, [PHARMACY, DOCTOR], [Ticket("prescription", "created", 0, 1, 0, None)]))
# An open ticket (no fulfiller) at a status that is not its claimable one.
@example(world=(NOBODY, [ANXIETY_COUNSELOR], [Ticket("counseling", "closed", 0, None, None, None)]))
@example(
    world=(
        NOBODY,
        [Provider("specialist", True, (), frozenset({1})), DOCTOR],
        [Ticket("referral", "created", 0, 1, None, None)],
    )
)
# An open ticket in a category the provider does not list (and one it does).
@example(
    world=(
        NOBODY,
        [ANXIETY_COUNSELOR],
        [
            Ticket("counseling", "open", 0, None, None, "stress"),
            Ticket("counseling", "open", 0, None, None, "anxiety"),
        ],
    )
)
# A claimer of the wrong kind.
@example(world=(NOBODY, [PHARMACY], [Ticket("counseling", "open", 0, None, None, None)]))
# Drafted tickets cancelled before sending stay hidden from their fulfiller; after, they do not.
@example(
    world=(
        NOBODY,
        [PHARMACY, DOCTOR],
        [
            Ticket("prescription", "cancelled", 0, 1, 0, None),
            Ticket("prescription", "cancelled", 3, 1, 0, None, sent_first=True),
        ],
    )
)
@example(
    world=(
        NOBODY,
        [Provider("specialist", True, (), frozenset({1})), DOCTOR],
        [
            Ticket("referral", "cancelled", 0, 1, 0, None),
            Ticket("referral", "cancelled", 3, 1, 0, None, sent_first=True),
        ],
    )
)
# Inserted by the system straight at a terminal status: a prescription at 'cancelled' was never
# sent (its pharmacy is no party), at 'delivered' or 'failed' it was; the same for a referral;
# a consultation has no draft; a finished ticket without a fulfiller is open to nobody.
@example(
    world=(
        NOBODY,
        [PHARMACY, DOCTOR],
        [
            Ticket("prescription", "cancelled", 0, 1, 0, None),
            Ticket("prescription", "delivered", 0, 1, 0, None),
            Ticket("prescription", "failed", 3, 1, 0, None),
        ],
    )
)
@example(
    world=(
        NOBODY,
        [Provider("specialist", True, (), frozenset({1})), DOCTOR],
        [
            Ticket("referral", "declined", 0, 1, 0, None),
            Ticket("referral", "completed", 3, 1, 0, None),
            Ticket("referral", "completed", 0, 1, None, None),
        ],
    )
)
@example(
    world=(
        NOBODY,
        [Provider("doctor", True, (), frozenset({1}))],
        [
            Ticket("consultation", "declined", 0, None, 0, None),
            Ticket("consultation", "completed", 0, None, None, None),
        ],
    )
)
def test_a_user_reads_a_ticket_iff_party_or_eligible_claimer(
    conn: psycopg.Connection, world: tuple[list[bool], list[Provider], list[Ticket]]
) -> None:
    admins, providers, tickets = world
    with conn.transaction():
        users = []
        for is_admin in admins:
            user = uuid.uuid4()
            conn.execute(
                "insert into auth.users (id, aud, role, email, raw_app_meta_data)"
                " values (%s, 'authenticated', 'authenticated', %s, %s)",
                [
                    user,
                    f"{user}@example.test",
                    json.dumps({"role": "admin" if is_admin else "doctor"}),
                ],
            )
            users.append(user)
        provider_ids = []
        for p in providers:
            row = conn.execute(
                "insert into public.providers (kind, name, is_active, expertise)"
                " values (%s, 'P', %s, %s) returning id",
                [p.kind, p.active, list(p.expertise)],
            ).fetchone()
            assert row is not None
            provider_ids.append(row[0])
            for m in p.members:
                conn.execute(
                    "insert into public.provider_members (provider_id, profile_id) values (%s, %s)",
                    [row[0], users[m]],
                )
        ticket_ids = []
        for t in tickets:
            primary = provider_ids[t.primary] if t.primary is not None else None
            secondary = provider_ids[t.secondary] if t.secondary is not None else None
            rx = None
            if t.ticket_type == "prescription" and t.status != "created":
                assert t.primary is not None
                doctor = users[min(providers[t.primary].members)]
                rx_row = conn.execute(
                    "insert into public.prescriptions (doctor_id, pharmacy_id, patient_id)"
                    " values (%s, %s, %s) returning id",
                    [doctor, secondary, users[t.patient]],
                ).fetchone()
                assert rx_row is not None
                rx = rx_row[0]
            row = conn.execute(
                "insert into public.healthcare_tickets (ticket_type, status, patient_id,"
                " primary_provider_id, secondary_provider_id, prescription_id, category,"
                " scheduled_time, meeting_link) values (%s, %s, %s, %s, %s, %s, %s, now(),"
                " 'https://meet.example/p') returning id",
                [
                    t.ticket_type,
                    "sent" if t.sent_first else t.status,
                    users[t.patient],
                    primary,
                    secondary,
                    rx,
                    t.category,
                ],
            ).fetchone()
            assert row is not None
            if t.sent_first:
                conn.execute(
                    "update public.healthcare_tickets set status = %s where id = %s",
                    [t.status, row[0]],
                )
            ticket_ids.append(row[0])
        sent = {
            tid: sent_at is not None
            for tid, sent_at in conn.execute(
                "select id, sent_at from public.healthcare_tickets where id = any(%s)",
                [ticket_ids],
            )
        }
        assert [sent[tid] for tid in ticket_ids] == [was_sent(t) for t in tickets], tickets

        for u, user in enumerate(users):
            with conn.transaction():
                conn.execute("set local role authenticated")
                conn.execute(
                    "select set_config('request.jwt.claims', %s, true)",
                    [json.dumps({"sub": str(user), "role": "authenticated"})],
                )
                seen = {
                    r[0]
                    for r in conn.execute(
                        "select id from public.healthcare_tickets where id = any(%s)",
                        [ticket_ids],
                    ).fetchall()
                }
                conn.execute("reset role")
            expected = {
                tid
                for tid, t in zip(ticket_ids, tickets, strict=True)
                if may_read(u, t, admins, providers)
            }
            assert seen == expected, (u, tickets)
        raise psycopg.Rollback()
