"""Turning a recorded sale into follow-up rows: the database side of `due_times`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.db import chunked
from scheduler.lifecycle import Anchor, Channel, FollowUpStatus, SaleStatus
from scheduler.models import Base, Cadence, CadenceStep, Customer, FollowUp, Product, Sale
from scheduler.sending.due_times import (
    Planned,
    SendRules,
    Step,
    parse_condition,
    plan_after_score,
    plan_sale,
    plan_step,
)

# The table itself for the one insert per batch of sales: Core's executemany, without the ORM's
# bookkeeping per row (a tenth of the time planning takes).
FOLLOW_UPS = Base.metadata.tables["follow_ups"]


class Because(StrEnum):
    """Why a product follows its cadence: chosen for it, its category's, or the default."""

    PRODUCT = "product"
    CATEGORY = "category"
    DEFAULT = "default"


def choose_cadence(
    cadence_id: int | None, category: str | None, cadences: Iterable[Cadence]
) -> tuple[Cadence, Because] | None:
    """The product's own cadence, else its category's, else the default; active ones only
    (one chosen for the product but paused hands it on to the next)."""
    active = [cadence for cadence in cadences if cadence.active]

    def fits(cadence: Cadence, because: Because) -> bool:
        if because is Because.PRODUCT:
            return cadence_id is not None and cadence.id == cadence_id
        if because is Because.CATEGORY:
            return category is not None and cadence.product_category == category
        return cadence.is_default

    for because in Because:  # in the order of preference
        for cadence in active:
            if fits(cadence, because):
                return cadence, because
    return None


def cadence_of(session: Session, product: Product | None) -> tuple[Cadence, Because] | None:
    """The cadence a product's sales follow (no product: the default's), and why."""
    cadence_id = product.cadence_id if product else None
    category = product.category if product else None
    candidates = session.scalars(
        select(Cadence).where(
            Cadence.active.is_(True),
            or_(
                Cadence.id == cadence_id,
                Cadence.product_category == category,
                Cadence.is_default.is_(True),
            ),
        )
    )
    return choose_cadence(cadence_id, category, candidates)


def cadence_for(session: Session, sale: Sale) -> Cadence | None:
    """The cadence a sale follows: its product's (see `cadence_of`)."""
    chosen = cadence_of(session, sale.product)
    return chosen[0] if chosen else None


def send_rules(config: Config, customer: Customer) -> SendRules:
    """The customer's own time zone, else the business's, with the business's window and days."""
    business = config.business
    return SendRules(
        tz=ZoneInfo(customer.timezone or business.timezone),
        window=business.send_window,
        days=business.send_days,
    )


def to_step(row: CadenceStep) -> Step:
    return Step(
        id=row.id,
        key=row.key,
        anchor=row.anchor,
        offset=timedelta(minutes=row.offset_minutes),
        channel=row.channel,
        condition=parse_condition(row.condition) if row.condition else None,
    )


def reachable_channel(
    wanted: Channel, customer: Customer, *, consenting: bool = False
) -> Channel | None:
    """The step's channel if the customer has that address, else the other one, else None.
    `consenting`: only a channel they have not opted out of (a follow-up planned now for a
    moment announced now, such as "did we solve it?", must not be one that will be skipped).
    Called for every follow-up planned: kept to plain lookups."""
    usable = {Channel.SMS: bool(customer.phone), Channel.EMAIL: bool(customer.email)}
    if consenting:
        usable = {c: ok and customer.opt_out_at(c) is None for c, ok in usable.items()}
    if usable[wanted]:
        return wanted
    other = Channel.EMAIL if wanted is Channel.SMS else Channel.SMS
    return other if usable[other] else None


def _row(sale: Sale, planned: Planned, now: datetime) -> dict[str, Any]:
    channel = reachable_channel(planned.channel, sale.customer)
    status, reason = planned.status, planned.reason
    if channel is None:
        channel, status, reason = planned.channel, FollowUpStatus.SKIPPED, "no phone or email"
    return {
        "sale_id": sale.id,
        "step_id": planned.step_id,
        "customer_id": sale.customer_id,
        "channel": channel,
        "due_at": planned.due_at,
        "status": status,
        "status_reason": reason,
        "attempts": 0,
        "facts": {},
        "created_at": now,
        "updated_at": now,
    }


def schedule_sales(
    session: Session,
    sales: Sequence[Sale],
    config: Config,
    now: datetime,
    *,
    just_recorded: bool = False,
) -> dict[int, int]:
    """Create the follow-ups these sales are missing, in one insert; running it again adds
    nothing. Returns how many each sale got. Cadences are looked up once per kind of product.
    `just_recorded`: the sales were inserted in this transaction, so they have none yet."""
    steps_by_product: dict[tuple[int | None, str | None], list[Step]] = {}
    have: set[tuple[int, int]] = set()
    for chunk in [] if just_recorded else chunked([sale.id for sale in sales]):
        existing = select(FollowUp.sale_id, FollowUp.step_id).where(
            FollowUp.sale_id.in_(chunk), FollowUp.case_id.is_(None)
        )
        have.update((sale_id, step_id) for sale_id, step_id in session.execute(existing))
    grace = timedelta(hours=config.cadences.late_grace_hours)
    rows: list[dict[str, Any]] = []
    added = dict.fromkeys((sale.id for sale in sales), 0)
    for sale in sales:
        product = sale.product
        kind = (product.cadence_id, product.category) if product else (None, None)
        if kind not in steps_by_product:
            cadence = cadence_for(session, sale)
            steps_by_product[kind] = (
                [to_step(row) for row in cadence.steps if row.active] if cadence else []
            )
        planned = plan_sale(
            steps_by_product[kind],
            sold_at=sale.sold_at,
            renewal_days=product.renewal_days if product else None,
            rules=send_rules(config, sale.customer),
            now=now,
            grace=grace,
        )
        for plan in planned:
            if (sale.id, plan.step_id) not in have:
                rows.append(_row(sale, plan, now))
                added[sale.id] += 1
    if rows:
        session.execute(insert(FOLLOW_UPS), rows)
    return added


def schedule_case_check(
    session: Session, case_id: int, customer: Customer, *, config: Config, now: datetime
) -> int:
    """Plan "did we solve it?" for a case just resolved, on the customer's latest sale: its
    cadence's steps anchored on the case's resolution, else the default cadence's, so that a
    cadence without one still keeps the promise, on a channel the customer has not opted out
    of. Returns how many were planned (0 for a customer with no active sale, or none we may
    write to: nothing would be sent)."""
    sale = session.scalars(
        select(Sale)
        .where(Sale.customer_id == customer.id, Sale.status == SaleStatus.ACTIVE)
        .order_by(Sale.sold_at.desc(), Sale.id.desc())
        .limit(1)
    ).first()
    if sale is None:
        return 0
    steps = _case_steps(cadence_for(session, sale))
    if not steps:
        steps = _case_steps(session.scalar(select(Cadence).where(Cadence.is_default.is_(True))))
    grace = timedelta(hours=config.cadences.late_grace_hours)
    rules = send_rules(config, customer)
    rows = [
        _row(sale, planned, now)
        | {"channel": channel, "case_id": case_id}
        | {"facts": {"case_id": case_id}}
        for planned in (plan_step(to_step(step), now, rules, now, grace) for step in steps)
        if (channel := reachable_channel(planned.channel, customer, consenting=True))
    ]
    if rows:
        session.execute(insert(FOLLOW_UPS), rows)
    return len(rows)


def _case_steps(cadence: Cadence | None) -> list[CadenceStep]:
    if cadence is None:
        return []
    return [row for row in cadence.steps if row.active and row.anchor is Anchor.CASE]


def schedule_after_score(
    session: Session,
    sale: Sale,
    *,
    score: int,
    at: datetime,
    config: Config,
    now: datetime,
    facts: dict[str, Any] | None = None,
) -> int:
    """Plan the steps a score enables (a review request after a 9, a hand-off after a 3),
    dated from when it arrived; `facts` (with the score) reach their templates. Returns how
    many were added; a step already planned for the sale is not planned twice."""
    cadence = cadence_for(session, sale)
    if cadence is None:
        return 0
    planned = plan_after_score(
        [to_step(row) for row in cadence.steps if row.active],
        score=score,
        at=at,
        rules=send_rules(config, sale.customer),
        now=now,
        grace=timedelta(hours=config.cadences.late_grace_hours),
    )
    have = set(session.scalars(select(FollowUp.step_id).where(FollowUp.sale_id == sale.id)))
    rows = [
        _row(sale, plan, now) | {"facts": {"score": score, **(facts or {})}}
        for plan in planned
        if plan.step_id not in have
    ]
    if rows:
        session.execute(insert(FOLLOW_UPS), rows)
    return len(rows)
