"""Changing follow-ups that have not gone out yet: cancel a sale, resume after a case, re-plan.

Only pending follow-ups (`scheduled`, `held`) ever change here; what was sent stays as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.config import Config
from scheduler.lifecycle import PENDING, Anchor, FollowUpStatus, SaleStatus
from scheduler.models import Cadence, CadenceStep, FollowUp, Product, Sale, nothing_in_flight
from scheduler.sending.due_times import anchor_offset, fit_to_window, plan_step
from scheduler.sending.planning import cadence_of, schedule_sales, send_rules, to_step
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


def _redate(
    rows: Sequence[FollowUp], *, config: Config, now: datetime, no_anchor: str
) -> dict[str, int]:
    """Date pending follow-ups again from their steps and their sale's product as they are now;
    cancel those whose step is inactive, or no longer applies (`no_anchor` says why). A moment
    already past beyond the late grace is skipped, never sent late. Returns how many were
    re-dated and how many cancelled."""
    grace = timedelta(hours=config.cadences.late_grace_hours)
    counts = {"redated": 0, "cancelled": 0}
    for row in rows:
        step = row.step
        if step.active and step.anchor in (Anchor.SCORE, Anchor.CASE):
            continue  # dated from an event (a score, a resolution) that cannot be redone
        offset = anchor_offset(to_step(step), _renewal_days(row.sale))
        if not step.active or offset is None:
            row.move_to(FollowUpStatus.CANCELLED, no_anchor if step.active else STEP_REMOVED, now)
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
    return counts


STEP_REMOVED = "step removed from cadence"


def replan_cadence(
    session: Session, cadence_id: int, *, config: Config, now: datetime, actor: str
) -> dict[str, int]:
    """After an owner edits a cadence: re-date its pending follow-ups from their steps, cancel
    those whose step is gone or inactive, and add new steps to the sales already following it."""
    steps = select(CadenceStep.id).where(CadenceStep.cadence_id == cadence_id)
    rows = _pending(session, FollowUp.step_id.in_(steps))
    counts = _redate(rows, config=config, now=now, no_anchor=STEP_REMOVED) | {"added": 0}
    sales = {row.sale_id for row in rows}
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


NO_RENEWAL = "the product no longer renews"
ALREADY_SENT = "this message already went out for this sale"
# A follow-up in one of these may have reached the customer: its message is not sent again.
MAY_HAVE_GONE = (
    FollowUpStatus.SENDING,
    FollowUpStatus.SENT,
    FollowUpStatus.DELIVERED,
    FollowUpStatus.UNKNOWN,
)


def replan_product(
    session: Session,
    product: Product,
    *,
    followed_before: Cadence | None,
    renewal_before: int | None,
    config: Config,
    now: datetime,
) -> dict[str, int]:
    """Keep the promise to a changed product's active sales (the product already changed).

    A new or changed renewal period re-dates their pending renewal follow-ups and plans the
    missing ones; a removed one cancels them. When the product now follows another cadence
    (its own, or through its category), the pending follow-ups of the old cadence's sale and
    renewal steps are cancelled with the reason and the new cadence's steps are planned from
    the sale's date: moments already past beyond the late grace are skipped, and a step whose
    template already went out for the sale is skipped too, so nothing is sent twice. Follow-ups
    answering an event (a score, a resolved case) stay as they are. A step a sale already has a
    row for, whatever its status, is not planned again (one follow-up per sale and step).
    Returns the counts of follow-ups re-dated, cancelled, added and skipped as already sent."""
    chosen = cadence_of(session, product)
    cadence = chosen[0] if chosen else None
    sales = select(Sale.id).where(Sale.product_id == product.id, Sale.status == SaleStatus.ACTIVE)
    counts = {"redated": 0, "cancelled": 0, "added": 0, "already_sent": 0}
    moved = (cadence.id if cadence else None) != (followed_before.id if followed_before else None)
    if not moved and product.renewal_days == renewal_before:
        return counts  # a new name: what was planned stays right
    if moved:
        others = select(CadenceStep.id).where(
            CadenceStep.anchor.in_((Anchor.SALE, Anchor.RENEWAL)),
            CadenceStep.cadence_id != (cadence.id if cadence else -1),
        )
        reason = (
            f"the product now follows the cadence {cadence.name!r}"
            if cadence
            else "the product follows no active cadence"
        )
        for row in _pending(session, FollowUp.sale_id.in_(sales), FollowUp.step_id.in_(others)):
            row.move_to(FollowUpStatus.CANCELLED, reason, now)
            counts["cancelled"] += 1
    if cadence is None:
        return counts
    renewal_steps = select(CadenceStep.id).where(
        CadenceStep.cadence_id == cadence.id, CadenceStep.anchor == Anchor.RENEWAL
    )
    rows = _pending(session, FollowUp.sale_id.in_(sales), FollowUp.step_id.in_(renewal_steps))
    for key, count in _redate(rows, config=config, now=now, no_anchor=NO_RENEWAL).items():
        counts[key] += count
    active = session.scalars(select(Sale).where(Sale.id.in_(sales))).all()
    if active:
        counts["added"] = sum(schedule_sales(session, active, config, now).values())
    if moved:
        counts["already_sent"] = _skip_already_sent(session, cadence, sales, now)
    return counts


def _skip_already_sent(
    session: Session, cadence: Cadence, sales: Select[Any], now: datetime
) -> int:
    """Skip the follow-ups just planned from `cadence` whose template already went out (or may
    have) for the same sale under another cadence: a customer thanked once is not thanked
    again because the shop moved the product."""
    gone = {
        (sale_id, template)
        for sale_id, template in session.execute(
            select(FollowUp.sale_id, CadenceStep.template_name)
            .join(FollowUp.step)
            .where(FollowUp.sale_id.in_(sales), FollowUp.status.in_(MAY_HAVE_GONE))
        )
    }
    steps = select(CadenceStep.id).where(CadenceStep.cadence_id == cadence.id)
    fresh = _pending(
        session,
        FollowUp.sale_id.in_(sales),
        FollowUp.step_id.in_(steps),
        FollowUp.created_at == now,
        FollowUp.status == FollowUpStatus.SCHEDULED,
    )
    skipped = 0
    for row in fresh:
        if (row.sale_id, row.step.template_name) in gone:
            row.move_to(FollowUpStatus.SKIPPED, ALREADY_SENT, now)
            skipped += 1
    return skipped


def _renewal_days(sale: Sale) -> int | None:
    return sale.product.renewal_days if sale.product else None
