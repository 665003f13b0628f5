"""A case at work, for the inbox's tests: a complaint on a sale, two days after it."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from scheduler.casework.cases import open_case_for
from scheduler.config import Config
from scheduler.lifecycle import Channel, Direction
from scheduler.models import Case, Customer, Message
from scheduler.sending.sales import record_sale
from tests.browsing import submit
from tests.factories import NOW, sale_input


def complaint(
    session: Session, config: Config, *, name: str = "Rosa Quispe", phone: str = "+51987654321",
    body: str = "la lavadora no prende", hours_ago: float = 0, email: str | None = None,
) -> Case:  # fmt: skip
    sale, _new = record_sale(
        session, sale_input(f"S-{phone}", customer_name=name, phone=phone, email=email),
        config=config, now=NOW, actor="test",
    )  # fmt: skip
    customer = session.get_one(Customer, sale.customer_id)
    at = NOW + timedelta(days=2) - timedelta(hours=hours_ago)
    message = Message(
        customer_id=customer.id, direction=Direction.INBOUND, channel=Channel.SMS,
        from_address=phone, to_address="+15005550006", body=body, status="received",
        label="objection", needs_human=True, created_at=at,
    )  # fmt: skip
    session.add(message)
    case, _opened = open_case_for(session, customer, message, reason="objection", config=config,
                                  now=at)  # fmt: skip
    session.commit()
    return case


def give(client: FlaskClient, case: Case, kind: str, value: str, description: str) -> None:
    """Record a remedy from the case page."""
    form = {"kind": kind, "value": value, "description": description}
    assert submit(client, f"/cases/{case.id}/remedies", form).status_code == 302
