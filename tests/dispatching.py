"""Shared set-up for dispatch tests: a database with the default cadence, a settable clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.config import Config
from scheduler.db import make_session_factory
from scheduler.defaults import install_defaults
from scheduler.lifecycle import Channel
from scheduler.models import CadenceStep, FollowUp, Sale
from scheduler.sending.dispatch import Dispatcher
from scheduler.sending.sales import SaleInput, record_sale
from scheduler.sending.transports import Transport, make_transports
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
    clock: Clock,
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
