"""A case at work: a complaint on a sale, two days after it (the inbox's tests), or opened on a
Monday morning with staff told (the notices' tests)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.casework.cases import open_case_for
from scheduler.casework.notices import notify_new_case
from scheduler.config import Config
from scheduler.defaults import install_defaults
from scheduler.lifecycle import Channel, Direction, RemedyStatus
from scheduler.models import Case, Customer, Message, Remedy, User
from scheduler.sending.sales import record_sale
from tests.browsing import submit
from tests.factories import NOW, inbound_sms, sale_input


@pytest.fixture
def frozen(session: Session) -> Iterator[object]:
    """Two days after the sale, with the default cadence and templates installed. Browsers
    log in once the clock is frozen: a session cookie issued at today's real time would look
    issued in the future, and every page would then ask to log in again."""
    install_defaults(session, NOW)
    session.commit()
    with freeze_time(NOW + timedelta(days=2)) as clock:
        yield clock


def complaint(
    session: Session,
    config: Config,
    *,
    name: str = "Rosa Quispe",
    phone: str = "+51987654321",
    body: str = "la lavadora no prende",
    hours_ago: float = 0,
    email: str | None = None,
) -> Case:
    sale, _new = record_sale(
        session,
        sale_input(f"S-{phone}", customer_name=name, phone=phone, email=email),
        config=config,
        now=NOW,
        actor="test",
    )
    customer = session.get_one(Customer, sale.customer_id)
    at = NOW + timedelta(days=2) - timedelta(hours=hours_ago)
    message = inbound_sms(
        body, at, sender=phone, customer_id=customer.id, label="objection", needs_human=True
    )
    session.add(message)
    case, _opened = open_case_for(
        session, customer, message, reason="objection", config=config, now=at
    )
    session.commit()
    return case


def waiting_remedy(session: Session, case: Case, staff: User) -> Remedy:
    """A refund of 300 a staff member asked the owner for: the case cannot be resolved yet."""
    remedy = Remedy(
        case_id=case.id,
        kind="refund",
        description="x",
        value=Decimal(300),
        granted_by_id=staff.id,
        status=RemedyStatus.REQUESTED,
        created_at=NOW,
    )
    session.add(remedy)
    return remedy


def give(client: FlaskClient, case: Case, kind: str, value: str, description: str) -> None:
    """Record a remedy from the case page."""
    form = {"kind": kind, "value": value, "description": description}
    assert submit(client, f"/cases/{case.id}/remedies", form).status_code == 302


OPENED = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # Monday 10:00 in Lima: due 14:00 (19:00 UTC)
DUE = datetime(2026, 11, 30, 19, 0, tzinfo=UTC)


def open_case(sessions: sessionmaker[Session], config: Config) -> int:
    with sessions.begin() as session:
        customer = session.scalars(select(Customer)).one()
        message = Message(
            customer_id=customer.id,
            direction=Direction.INBOUND,
            channel=Channel.SMS,
            from_address=customer.phone or "",
            to_address="+15005550006",
            body="la lavadora no prende",
            status="received",
            label="objection",
            needs_human=True,  # read, as the worker would have
            created_at=OPENED,
        )
        session.add(message)
        case, opened = open_case_for(
            session, customer, message, reason="objection", config=config, now=OPENED
        )
        assert opened and case.first_response_due_at == DUE
        notify_new_case(session, case, customer, message, config=config, now=OPENED)
        return case.id
