"""Changing follow-ups that have not gone out yet: cancel a sale, resume after a case, re-plan.

Only pending follow-ups (`scheduled`, `held`) ever change here; what was sent stays as it was.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.config import Config
from scheduler.lifecycle import PENDING, Anchor, FollowUpStatus, SaleStatus
from scheduler.models import CadenceStep, FollowUp, Sale, nothing_in_flight
from scheduler.sending.due_times import anchor_offset, fit_to_window, plan_step
from scheduler.sending.planning import schedule_sales, send_rules, to_step
from scheduler.typed_text import typed_text


def _pending(session: Session, *where: ColumnElement[bool]) -> list[FollowUp]:
    """Locked (PostgreSQL), so a worker's claim cannot slip in between this read and the write:
    the claim waits, then finds the row no longer scheduled. One whose message may have left
    is not pending: the worker looks it up first."""
    return list(
        session.scalars(
            select(FollowUp)
            .where(FollowUp.status.in_(PENDING), nothing_in_flight(), *where)
            .order_by(FollowUp.id)
            .with_for_update()
        )
    )


MAX_REASON = 200


class SaleError(ValueError):
    """A change to a sale that cannot be made as asked; the message says why, for the person."""


def cancel_sale(
    session: Session,
    sale: Sale,
    *,
    now: datetime,
    actor: str,
    reason: str | None,
    by: str | None = None,
) -> int:
    """Cancel the sale and its pending follow-ups; returns how many were cancelled. Refused
    without a reason: the customer's story must say why they heard no more. `by` names the
    person who cancelled it, kept with the reason."""
    reason = typed_text(
        reason,
        empty="say why the sale is cancelled",
        what="a reason",
        most=MAX_REASON,
        error=SaleError,
    )
    if by is not None:
        reason = f"{by}: {reason}"
    cancelled = 0
    if sale.status is not SaleStatus.CANCELLED:
        sale.status, sale.cancelled_at = SaleStatus.CANCELLED, now
        for row in _pending(session, FollowUp.sale_id == sale.id):
            row.move_to(FollowUpStatus.CANCELLED, reason, now)
            cancelled += 1
        audit.record(
            session,
            at=now,
            actor=actor,
            action="sale.cancel",
            entity_type="sale",
            entity_id=sale.id,
            reason=reason,
            follow_ups=cancelled,
        )
    return cancelled


def hold_pending(session: Session, customer_id: int, *, now: datetime) -> int:
    """A case opened: the customer's scheduled follow-ups wait until a person has answered."""
    rows = _pending(
        session, FollowUp.customer_id == customer_id, FollowUp.status == FollowUpStatus.SCHEDULED
    )
    for row in rows:
        row.move_to(FollowUpStatus.HELD, "the customer has an open case", now)
    return len(rows)


def resume_held(session: Session, customer_id: int, *, config: Config, now: datetime) -> int:
    """The customer's case is resolved: held follow-ups go out again, from now, in the window."""
    resumed = 0
    held = _pending(
        session, FollowUp.customer_id == customer_id, FollowUp.status == FollowUpStatus.HELD
    )
    for row in held:
        rules = send_rules(config, row.sale.customer)
        row.move_to(FollowUpStatus.SCHEDULED, "resumed after the case closed", now)
        row.due_at = fit_to_window(max(row.due_at, now), rules)
        resumed += 1
    return resumed


def replan_cadence(
    session: Session, cadence_id: int, *, config: Config, now: datetime, actor: str
) -> dict[str, int]:
    """After an owner edits a cadence: re-date its pending follow-ups from their steps, cancel
    those whose step is gone or inactive, and add new steps to the sales already following it."""
    steps = {
        row.id: row
        for row in session.scalars(select(CadenceStep).where(CadenceStep.cadence_id == cadence_id))
    }
    counts = {"redated": 0, "cancelled": 0, "added": 0}
    grace = timedelta(hours=config.cadences.late_grace_hours)
    sales: set[int] = set()
    for row in _pending(session, FollowUp.step_id.in_(steps)):
        sales.add(row.sale_id)
        step = steps[row.step_id]
        if step.active and step.anchor in (Anchor.SCORE, Anchor.CASE):
            continue  # dated from an event (a score, a resolution) the cadence cannot redo
        offset = anchor_offset(to_step(step), _renewal_days(row.sale))
        if not step.active or offset is None:
            row.move_to(FollowUpStatus.CANCELLED, "step removed from cadence", now)
            counts["cancelled"] += 1
            continue
        rules = send_rules(config, row.sale.customer)
        anchor = row.sale.sold_at.astimezone(rules.tz) + offset
        planned = plan_step(to_step(step), anchor, rules, now, grace)
        if planned.due_at == row.due_at and planned.status is FollowUpStatus.SCHEDULED:
            continue
        reason = planned.reason or "re-planned after a cadence change"
        if row.status is FollowUpStatus.SCHEDULED:
            row.move_to(planned.status, reason, now)
        else:  # a held one stays held, with its new date
            row.status_reason, row.updated_at = reason, now
        row.due_at = planned.due_at
        counts["redated"] += 1
    active = session.scalars(
        select(Sale).where(Sale.id.in_(sales), Sale.status == SaleStatus.ACTIVE)
    ).all()
    if active:
        counts["added"] = sum(schedule_sales(session, active, config, now).values())
    audit.record(
        session,
        at=now,
        actor=actor,
        action="cadence.replan",
        entity_type="cadence",
        entity_id=cadence_id,
        **counts,
    )
    return counts


def _renewal_days(sale: Sale) -> int | None:
    return sale.product.renewal_days if sale.product else None
