"""A customer's whole story, oldest first: sales, follow-ups, messages both ways, cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from scheduler.models import Case, FollowUp, Message, Sale

Kind = Literal["sale", "follow_up", "message", "case"]
_ORDER: dict[Kind, int] = {"sale": 0, "follow_up": 1, "message": 2, "case": 3}


@dataclass(frozen=True)
class Event:
    kind: Kind
    at: datetime  # when it happened, or for a follow-up, when it is (was) due
    item: Sale | FollowUp | Message | Case


def customer_timeline(session: Session, customer_id: int) -> list[Event]:
    """Everything that happened with the customer, in order; at the same moment a sale comes
    before its follow-ups, and those before the messages and the cases they led to."""
    sales = session.scalars(
        select(Sale).where(Sale.customer_id == customer_id).options(selectinload(Sale.product))
    )
    follow_ups = session.scalars(
        select(FollowUp)
        .where(FollowUp.customer_id == customer_id)
        .options(selectinload(FollowUp.step))
    )
    messages = session.scalars(select(Message).where(Message.customer_id == customer_id))
    cases = session.scalars(select(Case).where(Case.customer_id == customer_id))
    events = [
        *(Event("sale", sale.sold_at, sale) for sale in sales),
        *(Event("follow_up", row.due_at, row) for row in follow_ups),
        *(Event("message", message.created_at, message) for message in messages),
        *(Event("case", case.opened_at, case) for case in cases),
    ]
    events.sort(key=lambda event: (event.at, _ORDER[event.kind], event.item.id))
    return events
