"""Shared set-up for dispatch tests: a database with the default cadence, a settable clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from scheduler.config import Config
from scheduler.db import make_session_factory
from scheduler.defaults import install_defaults
from scheduler.lifecycle import Channel
from scheduler.models import CadenceStep, FollowUp, OutboxEntry, Sale
from scheduler.sending.dispatch import Dispatcher
from scheduler.sending.sales import SaleInput, record_sale
from scheduler.sending.transports import Outgoing, Sent, Transport, TransportError, make_transports
from scheduler.sending.transports.outbox import OutboxTransport
from tests.factories import NOW


class Clock:
    """A clock the test moves by hand: dispatch reads time only through it."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **span: float) -> None:
        self.now += timedelta(**span)


def setup_sales(
    engine: Engine, config: Config, *sales: SaleInput, now: datetime = NOW
) -> sessionmaker[Session]:
    """The default cadence, and `sales` recorded at `now`."""
    sessions = make_session_factory(engine, writer=True)
    with sessions.begin() as session:
        install_defaults(session, now)
        for sale in sales:
            record_sale(session, sale, config=config, now=now, actor="test")
    return sessions


def dispatcher(
    sessions: sessionmaker[Session],
    config: Config,
    clock: Callable[[], datetime],
    transports: Mapping[Channel, Transport] | None = None,
    worker_id: str = "test-worker",
) -> Dispatcher:
    return Dispatcher(
        sessions,
        config,
        transports or make_transports(config, sessions, clock),
        worker_id=worker_id,
        clock=clock,
        jitter=lambda: 0.0,
    )


def follow_up(session: Session, step_key: str, external_id: str = "S-1") -> FollowUp:
    return session.scalars(
        select(FollowUp)
        .join(CadenceStep)
        .join(Sale)
        .where(CadenceStep.key == step_key, Sale.external_id == external_id)
    ).one()


DAY1 = NOW + timedelta(days=1)  # Tuesday 10:00 in Lima: the day-1 thank-you is due


class Scripted:
    """A transport of our own interface that fails as told, then sends to the outbox."""

    def __init__(self, outbox: OutboxTransport, *errors: TransportError) -> None:
        self.outbox = outbox
        self.channel = outbox.channel
        self.sender = outbox.sender
        self.max_per_second = 0.0
        self.parallel = True
        self.errors = list(errors)
        self.sends: list[Outgoing] = []
        self.lookups: list[Outgoing] = []
        self.find_error: TransportError | None = None

    def send(self, message: Outgoing) -> Sent:
        self.sends.append(message)
        if self.errors:
            raise self.errors.pop(0)
        return self.outbox.send(message)

    def find(self, message: Outgoing, since: datetime) -> Sent | None:
        self.lookups.append(message)
        if self.find_error:
            raise self.find_error
        return self.outbox.find(message, since)


def scripted(
    sessions: sessionmaker[Session], clock: Callable[[], datetime], *errors: TransportError
) -> dict[Channel, Scripted]:
    return {
        channel: Scripted(OutboxTransport(channel, sessions, clock), *errors) for channel in Channel
    }


def outbox(session: Session) -> list[OutboxEntry]:
    return list(session.scalars(select(OutboxEntry).order_by(OutboxEntry.id)))


# The columns a follow-up written by hand gives (the rest take their defaults).
_BY_HAND = (
    "id, sale_id, step_id, customer_id, channel, due_at, status, attempts, facts, created_at, "
    "updated_at"
).split(", ")


def replace_by_hand(session: Session, where: str, **values: str) -> None:
    """The follow-ups `where` (SQL) written again as a person might at the database's prompt,
    with `values` (SQL, by column) in place of theirs: SQLite's INSERT OR REPLACE (the
    replaced row's delete trigger fires), PostgreSQL's upsert."""
    columns = ", ".join(_BY_HAND)
    read = f"SELECT {', '.join(values.get(name, name) for name in _BY_HAND)} FROM follow_ups"
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text(f"INSERT OR REPLACE INTO follow_ups ({columns}) {read} WHERE {where}"))
        return
    changed = ", ".join(f"{name} = excluded.{name}" for name in values)
    session.execute(
        text(
            f"INSERT INTO follow_ups ({columns}) {read} WHERE {where} "
            f"ON CONFLICT (id) DO UPDATE SET {changed}"
        )
    )
