"""Turning a recorded sale into follow-up rows: the database side of `planning`."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.lifecycle import Channel, FollowUpStatus
from scheduler.models import Cadence, CadenceStep, Customer, FollowUp, Sale
from scheduler.planning import Planned, SendRules, Step, parse_condition, plan_sale


def cadence_for(session: Session, sale: Sale) -> Cadence | None:
    """The product's own cadence, else its category's, else the default; active ones only."""
    product = sale.product
    choices = []
    if product is not None and product.cadence_id is not None:
        choices.append(Cadence.id == product.cadence_id)
    if product is not None and product.category:
        choices.append(Cadence.product_category == product.category)
    choices.append(Cadence.is_default.is_(True))
    for choice in choices:
        cadence = session.scalar(select(Cadence).where(choice, Cadence.active.is_(True)))
        if cadence is not None:
            return cadence
    return None


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


def reachable_channel(wanted: Channel, customer: Customer) -> Channel | None:
    """The step's channel if the customer has that address, else the other one, else None."""
    has = {Channel.SMS: bool(customer.phone), Channel.EMAIL: bool(customer.email)}
    if has[wanted]:
        return wanted
    other = Channel.EMAIL if wanted is Channel.SMS else Channel.SMS
    return other if has[other] else None


def _row(sale: Sale, planned: Planned, now: datetime) -> FollowUp:
    channel = reachable_channel(planned.channel, sale.customer)
    status, reason = planned.status, planned.reason
    if channel is None:
        channel, status, reason = planned.channel, FollowUpStatus.SKIPPED, "no phone or email"
    return FollowUp(
        sale_id=sale.id,
        step_id=planned.step_id,
        customer_id=sale.customer_id,
        channel=channel,
        due_at=planned.due_at,
        status=status,
        status_reason=reason,
        created_at=now,
        updated_at=now,
    )


def schedule_sale(session: Session, sale: Sale, config: Config, now: datetime) -> list[FollowUp]:
    """Create the follow-ups a sale is missing; running it again adds nothing."""
    cadence = cadence_for(session, sale)
    if cadence is None:
        return []
    steps = [to_step(row) for row in cadence.steps if row.active]
    planned = plan_sale(
        steps,
        sold_at=sale.sold_at,
        renewal_days=sale.product.renewal_days if sale.product else None,
        rules=send_rules(config, sale.customer),
        now=now,
        grace=timedelta(hours=config.cadences.late_grace_hours),
    )
    have = set(session.scalars(select(FollowUp.step_id).where(FollowUp.sale_id == sale.id)))
    rows = [_row(sale, p, now) for p in planned if p.step_id not in have]
    session.add_all(rows)
    session.flush()
    return rows
