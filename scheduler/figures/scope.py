"""Whose figures, and when: one cadence's steps, one product's sales, both or all; the
condition that a moment falls in a period; and the product a customer had bought by then."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, and_, select
from sqlalchemy.orm import InstrumentedAttribute, aliased

from scheduler.figures.period import Period
from scheduler.models import CadenceStep, FollowUp, Message, Sale


@dataclass(frozen=True)
class Scope:
    """Whose figures: one cadence's steps, one product's sales, both, or all (None)."""

    cadence_id: int | None = None
    product_id: int | None = None


EVERYTHING = Scope()


def within(column: InstrumentedAttribute[Any], period: Period) -> ColumnElement[bool]:
    return and_(column >= period.start, column < period.end)


def of_scope(query: Select, scope: Scope) -> Select:  # type: ignore[type-arg]
    """Only the follow-ups of the scope's cadence and product (the query reads FollowUp)."""
    if scope.cadence_id is not None:
        steps = select(CadenceStep.id).where(CadenceStep.cadence_id == scope.cadence_id)
        query = query.where(FollowUp.step_id.in_(steps))
    if scope.product_id is not None:
        query = query.where(FollowUp.product_id == scope.product_id)
    return query


def replies_of_scope(query: Select, scope: Scope) -> Select:  # type: ignore[type-arg]
    """Only the replies to the scope's follow-ups (the query reads Message): one product's by
    the product each reply keeps (`Message.product_id`), one cadence's joined to their
    follow-ups' steps."""
    if scope.product_id is not None:
        query = query.where(Message.product_id == scope.product_id)
    if scope.cadence_id is not None:
        joined = query.join(FollowUp, FollowUp.id == Message.follow_up_id)
        query = of_scope(joined, Scope(cadence_id=scope.cadence_id))
    return query


def bought_by_then(customer: Any, moment: Any) -> ScalarSelect[Any]:
    """The product of the customer's latest purchase by that moment (columns of the outer
    query): what a reply or a case answering no follow-up is about."""
    bought = aliased(Sale)
    return (
        select(bought.product_id)
        .where(bought.customer_id == customer, bought.sold_at <= moment)
        .order_by(bought.sold_at.desc(), bought.id.desc())
        .limit(1)
        .scalar_subquery()
    )
