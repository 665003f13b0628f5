"""The data model: aware UTC datetimes, and the integrity rules the database itself enforces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from scheduler.lifecycle import CaseStatus, Channel, Direction, FollowUpStatus
from scheduler.models import (
    Cadence,
    CadenceStep,
    Case,
    Customer,
    FollowUp,
    Message,
    Sale,
)

NOW = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)


def make_sale(session: Session, external_id: str = "S-1") -> Sale:
    customer = Customer(name="Ana", phone="+51987654321", created_at=NOW)
    sale = Sale(external_id=external_id, customer=customer, sold_at=NOW, created_at=NOW)
    session.add(sale)
    session.flush()
    return sale


def make_step(session: Session) -> CadenceStep:
    cadence = Cadence(name="Default", is_default=True, created_at=NOW, updated_at=NOW)
    step = CadenceStep(
        cadence=cadence,
        key="day1",
        offset_minutes=1440,
        channel=Channel.SMS,
        template_name="thanks",
    )
    session.add(step)
    session.flush()
    return step


def follow_up(sale: Sale, step: CadenceStep) -> FollowUp:
    return FollowUp(
        sale_id=sale.id,
        step_id=step.id,
        customer_id=sale.customer_id,
        channel=Channel.SMS,
        due_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )


def test_datetimes_come_back_aware_in_utc(session: Session) -> None:
    lima = datetime(2026, 3, 8, 9, 0, tzinfo=ZoneInfo("America/Lima"))
    customer = Customer(name="Ana", created_at=lima)
    session.add(customer)
    session.commit()
    session.expunge_all()
    loaded = session.scalars(select(Customer)).one()
    assert loaded.created_at.tzinfo is UTC
    assert loaded.created_at == datetime(2026, 3, 8, 14, 0, tzinfo=UTC)


def test_datetime_comparisons_in_sql_use_utc(session: Session) -> None:
    plus_five = timezone(timedelta(hours=5))
    session.add(Customer(name="Ana", created_at=datetime(2026, 1, 1, 12, 0, tzinfo=plus_five)))
    session.commit()
    cutoff = datetime(2026, 1, 1, 7, 30, tzinfo=UTC)  # the customer was created at 07:00 UTC
    assert session.scalar(select(Customer).where(Customer.created_at < cutoff)) is not None


def test_naive_datetimes_are_refused(session: Session) -> None:
    session.add(Customer(name="Ana", created_at=datetime(2026, 1, 1, 12, 0)))
    with pytest.raises(StatementError, match="naive datetime 2026-01-01T12:00:00"):
        session.flush()


def test_one_follow_up_per_sale_and_step(session: Session) -> None:
    sale, step = make_sale(session), make_step(session)
    session.add(follow_up(sale, step))
    session.flush()
    session.add(follow_up(sale, step))
    with pytest.raises(IntegrityError):
        session.flush()


def test_one_message_per_provider_id(session: Session) -> None:
    def message(provider_id: str | None) -> Message:
        return Message(
            direction=Direction.INBOUND,
            channel=Channel.SMS,
            from_address="+51987654321",
            to_address="+15005550006",
            body="Gracias",
            provider_id=provider_id,
            status="received",
            created_at=NOW,
        )

    session.add_all([message(None), message(None), message("SM1")])
    session.flush()  # messages without a provider id (not sent yet) do not collide
    session.add(message("SM1"))
    with pytest.raises(IntegrityError):
        session.flush()


def test_one_open_case_per_customer(session: Session) -> None:
    customer_id = make_sale(session).customer_id

    def case(status: CaseStatus) -> Case:
        return Case(
            customer_id=customer_id, status=status, opened_at=NOW, first_response_due_at=NOW
        )

    session.add_all([case(CaseStatus.RESOLVED), case(CaseStatus.RESOLVED), case(CaseStatus.OPEN)])
    session.flush()
    session.add(case(CaseStatus.OPEN))
    with pytest.raises(IntegrityError):
        session.flush()


def test_at_most_one_default_cadence(session: Session) -> None:
    session.add_all(
        [
            Cadence(name="A", is_default=True, created_at=NOW, updated_at=NOW),
            Cadence(name="B", is_default=False, created_at=NOW, updated_at=NOW),
            Cadence(name="C", is_default=False, created_at=NOW, updated_at=NOW),
        ]
    )
    session.flush()
    session.add(Cadence(name="D", is_default=True, created_at=NOW, updated_at=NOW))
    with pytest.raises(IntegrityError):
        session.flush()


def test_external_id_is_unique(session: Session) -> None:
    make_sale(session, "S-9")
    with pytest.raises(IntegrityError):
        make_sale(session, "S-9")


def test_status_values_are_checked_by_the_database(engine: Engine, session: Session) -> None:
    sale, step = make_sale(session), make_step(session)
    row = follow_up(sale, step)
    session.add(row)
    session.commit()
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE follow_ups SET status = 'teleported'"))
    assert session.scalar(select(FollowUp.status)) == FollowUpStatus.SCHEDULED


def test_foreign_keys_are_enforced(session: Session) -> None:
    session.add(Sale(external_id="S-2", customer_id=999, sold_at=NOW, created_at=NOW))
    with pytest.raises(IntegrityError):
        session.flush()
