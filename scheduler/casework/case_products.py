"""The product each case is about, as the database keeps it (`cases.product_id`, migration
0042), and read again for the cases opened lately.

The triggers keep it through every write, but a sale and a case written at the same moment
in two transactions cannot see each other: the case opened without the sale, whose trigger
found no case to change. Having every case opened lock its customer would close that gap,
but the imports lock customers in their order and the replies' batches open cases in
theirs: they would deadlock. Instead the cases opened within RECHECKED (whatever their
state now) are read again by the worker every RECHECK_SECONDS: the inbox filtered by a
product is right again within a minute. PostgreSQL alone: SQLite writes one transaction at
a time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, update
from sqlalchemy.orm import Session

from scheduler.casework.context import first_answered
from scheduler.figures.scope import bought_by_then
from scheduler.models import Case, Sale

RECHECK_SECONDS = 60  # how often the worker reads the lately opened cases' product again
RECHECKED = timedelta(days=1)  # longer than any transaction recording sales lasts


def product_about() -> ColumnElement[Any]:
    """`context.about`'s product, as a column over cases (what the triggers keep): the sale
    its first message answering a follow-up answers (none, for a sale of no product), else
    the customer's latest purchase by the time it opened."""
    answered = first_answered(Case.id, func.coalesce(Sale.product_id, 0)).scalar_subquery()
    latest = bought_by_then(Case.customer_id, Case.opened_at)
    return func.nullif(func.coalesce(answered, latest), 0)


def recheck(session: Session, *, now: datetime) -> int:
    """The cases opened within RECHECKED whose kept product is not the one they are about
    now, given it; returns how many."""
    about = product_about()
    changed = session.execute(
        update(Case)
        .where(
            Case.opened_at >= now - RECHECKED,
            Case.product_id.is_distinct_from(about),
        )
        .values(product_id=about)
        .execution_options(synchronize_session=False)
    )
    return int(changed.rowcount)  # type: ignore[attr-defined]
