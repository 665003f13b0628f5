"""A case in context, for the person answering it: the sale the conversation is about, the
customer's earlier cases and what was given them then, and the follow-ups waiting for this
case to end. Read-only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from scheduler.lifecycle import CaseStatus, FollowUpStatus, RemedyStatus
from scheduler.models import CadenceStep, Case, FollowUp, Message, Product, Remedy, Sale

EARLIER_MOST = 20  # earlier cases shown, the latest first


@dataclass(frozen=True)
class CaseContext:
    sale: Sale | None  # what the conversation is about, if any sale is known
    product: Product | None
    earlier: list[Case]  # the customer's other cases, the latest first
    remedies_before: list[Remedy]  # given in those cases (granted), the latest first
    held: list[tuple[FollowUp, CadenceStep]]  # waiting for the case to end, the soonest first


def first_answered(case_id: Any, column: Any) -> Select[Any]:
    """`column` (of the sale) of the sale whose follow-up the case's first answering message
    answers (`case_id` a column of the outer query, or a value): what the case is about, when
    any message answers a follow-up. The case's page reads it; the inbox reads the product
    the database keeps by the same rule (migration 0042, checked against this one by
    `case_products.product_about`'s tests)."""
    return (
        select(column)
        .select_from(Message)
        .join(FollowUp, FollowUp.id == Message.follow_up_id)
        .join(Sale, Sale.id == FollowUp.sale_id)
        .where(Message.case_id == case_id)
        .order_by(Message.created_at, Message.id)
        .limit(1)
    )


def about(session: Session, case: Case) -> Sale | None:
    """The sale the case's first message answering a follow-up answers; else the customer's
    latest purchase before the case opened (the dashboard's rule too)."""
    answered: Sale | None = session.scalar(first_answered(case.id, Sale))
    if answered is not None:
        return answered
    return session.scalar(
        select(Sale)
        .where(Sale.customer_id == case.customer_id, Sale.sold_at <= case.opened_at)
        .order_by(Sale.sold_at.desc(), Sale.id.desc())
        .limit(1)
    )


def case_context(session: Session, case: Case) -> CaseContext:
    sale = about(session, case)
    product = session.get(Product, sale.product_id) if sale and sale.product_id else None
    earlier = list(
        session.scalars(
            select(Case)
            .where(Case.customer_id == case.customer_id, Case.id != case.id)
            .order_by(Case.opened_at.desc(), Case.id.desc())
            .limit(EARLIER_MOST)
        )
    )
    remedies = list(
        session.scalars(
            select(Remedy)
            .where(
                Remedy.case_id.in_([other.id for other in earlier]),
                Remedy.status == RemedyStatus.GRANTED,
            )
            .order_by(Remedy.created_at.desc(), Remedy.id.desc())
        )
    )
    held = (
        [
            (follow_up, step)
            for follow_up, step in session.execute(
                select(FollowUp, CadenceStep)
                .join(CadenceStep, CadenceStep.id == FollowUp.step_id)
                .where(
                    FollowUp.customer_id == case.customer_id,
                    FollowUp.status == FollowUpStatus.HELD,
                )
                .order_by(FollowUp.due_at, FollowUp.id)
            )
        ]
        if case.status is CaseStatus.OPEN
        else []
    )
    return CaseContext(sale, product, earlier, remedies, held)
