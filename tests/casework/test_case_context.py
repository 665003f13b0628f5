"""A case in context: the sale it is about, the customer's earlier cases and what they were
given, the follow-ups waiting for it (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.casework.context import case_context
from scheduler.config import Config
from scheduler.lifecycle import CaseStatus, FollowUpStatus, RemedyStatus
from scheduler.models import Case, FollowUp, Message, Remedy, User
from scheduler.sending.sales import record_sale
from tests.complaints import complaint, frozen
from tests.factories import NOW, sale_input

__all__ = ["frozen"]  # a fixture of tests.complaints


@pytest.fixture
def staff_client(frozen: object, staff_client: FlaskClient) -> FlaskClient:
    return staff_client


def with_history(session: Session, config: Config, staff: User) -> tuple[Case, Case]:
    """Rosa's open complaint about her washer, and an earlier case of hers, resolved with a
    refund granted (and a discount only asked for, not given)."""
    case = complaint(session, config)
    earlier = Case(
        customer_id=case.customer_id,
        reason="objection",
        opened_at=NOW - timedelta(days=40),
        first_response_due_at=NOW - timedelta(days=40),
        status=CaseStatus.RESOLVED,
        resolved_at=NOW - timedelta(days=39),
        outcome="Cambiamos la manguera",
    )
    session.add(earlier)
    session.flush()
    for status, kind in ((RemedyStatus.GRANTED, "refund"), (RemedyStatus.DECLINED, "discount")):
        session.add(
            Remedy(
                case_id=earlier.id,
                kind=kind,
                description=f"un {kind}",
                value=Decimal(50),
                granted_by_id=staff.id,
                status=status,
                created_at=NOW - timedelta(days=39),
            )
        )
    session.commit()
    return case, earlier


def test_the_case_in_context(session: Session, config: Config, staff: User, frozen: object) -> None:
    case, earlier = with_history(session, config, staff)
    found = case_context(session, case)
    assert found.sale is not None and found.sale.external_id == "S-+51987654321"
    assert found.product is not None and found.product.name == "Lavadora"
    assert [other.id for other in found.earlier] == [earlier.id]
    assert [(given.kind, given.description) for given in found.remedies_before] == [
        ("refund", "un refund")
    ]
    held = session.scalars(
        select(FollowUp.id).where(FollowUp.status == FollowUpStatus.HELD).order_by(FollowUp.due_at)
    ).all()
    assert held and [follow_up.id for follow_up, _step in found.held] == list(held)


def test_the_sale_a_case_is_about(
    session: Session, config: Config, staff: User, frozen: object
) -> None:
    """The latest purchase before the case, unless a message of it answers a follow-up."""
    case, _earlier = with_history(session, config, staff)
    cooker, _new = record_sale(
        session,
        sale_input(
            "S-2", sold_at=NOW + timedelta(days=1), product_sku="COC-1", product_name="Cocina"
        ),
        config=config,
        now=NOW + timedelta(days=1),
        actor="test",
    )
    session.commit()
    found = case_context(session, case)
    assert found.sale is not None and found.sale.id == cooker.id
    washer = session.scalars(
        select(FollowUp.id).join(FollowUp.sale).where(FollowUp.sale_id != cooker.id)
    ).first()
    message = session.scalars(select(Message).where(Message.case_id == case.id)).one()
    message.follow_up_id = washer
    session.commit()
    answered = case_context(session, case)
    assert answered.sale is not None and answered.sale.external_id == "S-+51987654321"
    assert answered.product is not None and answered.product.name == "Lavadora"


def test_the_case_page_shows_its_context(
    staff_client: FlaskClient, session: Session, config: Config, staff: User
) -> None:
    case, earlier = with_history(session, config, staff)
    page = staff_client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert "In context" in page and "Lavadora" in page
    assert f'href="/customers/{case.customer_id}"' in page
    assert f'href="/cases/{earlier.id}"' in page and "Cambiamos la manguera" in page
    assert "un refund" in page and "un discount" not in page
    assert "Follow-ups waiting for this case to end" in page
