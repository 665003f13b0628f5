"""What goes out next: the follow-ups waiting to go in the coming days (and those overdue,
waiting for the send window), the soonest first, filtered by cadence, step, channel, product
and whether paused, a page at a time by keyset (due time, id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, select, true
from sqlalchemy.orm import Session

from scheduler.lifecycle import Channel, FollowUpStatus
from scheduler.models import Cadence, CadenceStep, Customer, FollowUp, Product
from scheduler.paging import Cursor, beyond, count_up_to, cut
from scheduler.sending.pauses import BUSINESS, cadence_scope, open_pauses

PAGE = 100  # follow-ups a page
DAYS = 7  # the default look ahead
DAYS_MOST = 366
COUNT_MOST = 10_000  # counted so far, then "more than"


@dataclass(frozen=True)
class UpcomingFilter:
    """Which waiting follow-ups to show; the empty filter is the next DAYS days'."""

    days: int = DAYS  # due by now + days (overdue ones included)
    cadence_id: int | None = None
    step_id: int | None = None
    channel: Channel | None = None
    product_id: int | None = None
    paused: bool | None = None  # only paused ones (True), only the others (False)


@dataclass(frozen=True)
class Upcoming:
    follow_up: FollowUp
    customer: Customer
    step: CadenceStep
    cadence: Cadence
    product: str | None
    held: str | None  # "follow_up", "cadence" or "business": what holds it back, if anything


@dataclass(frozen=True)
class Page:
    rows: list[Upcoming]
    matching: int  # COUNT_MOST + 1: more than COUNT_MOST
    following: Cursor | None


def _kept(wanted: UpcomingFilter, now: datetime) -> list[ColumnElement[bool]]:
    kept: list[ColumnElement[bool]] = [
        FollowUp.status == FollowUpStatus.SCHEDULED,
        FollowUp.due_at <= now + timedelta(days=wanted.days),
    ]
    if wanted.cadence_id is not None:
        kept.append(CadenceStep.cadence_id == wanted.cadence_id)
    if wanted.step_id is not None:
        kept.append(FollowUp.step_id == wanted.step_id)
    if wanted.channel is not None:
        kept.append(FollowUp.channel == wanted.channel)
    if wanted.product_id is not None:
        kept.append(FollowUp.product_id == wanted.product_id)
    if wanted.paused is not None:
        is_paused = FollowUp.paused_at.is_not(None)
        kept.append(is_paused if wanted.paused else FollowUp.paused_at.is_(None))
    return kept


def upcoming(
    session: Session,
    wanted: UpcomingFilter,
    *,
    now: datetime,
    after: Cursor | None = None,
    size: int | None = None,
) -> Page:
    """A page of the waiting follow-ups the filter keeps, the soonest first, after `after`;
    with how many match in all, and what holds each back."""
    size = size or PAGE
    kept = and_(true(), *_kept(wanted, now))
    counted = select(FollowUp.id).where(kept)
    if wanted.cadence_id is not None:  # joined only when filtered by
        counted = counted.join(CadenceStep, CadenceStep.id == FollowUp.step_id)
    matching = count_up_to(session, counted, COUNT_MOST)
    query = (
        select(FollowUp, Customer, CadenceStep, Cadence, Product.name)
        .join(Customer, Customer.id == FollowUp.customer_id)
        .join(CadenceStep, CadenceStep.id == FollowUp.step_id)
        .join(Cadence, Cadence.id == CadenceStep.cadence_id)
        .outerjoin(Product, Product.id == FollowUp.product_id)
        .where(kept)
    )
    if after is not None:
        query = query.where(beyond(FollowUp.due_at, FollowUp.id, after, newest_first=False))
    read = session.execute(query.order_by(FollowUp.due_at, FollowUp.id).limit(size + 1)).all()
    pauses = {pause.scope for pause, _cadence in open_pauses(session)}
    rows = [
        Upcoming(follow_up, customer, step, cadence, product, _held(follow_up, cadence, pauses))
        for follow_up, customer, step, cadence, product in read
    ]
    page, following = cut(rows, size, lambda row: (row.follow_up.due_at, row.follow_up.id))
    return Page(page, matching, following)


def _held(follow_up: FollowUp, cadence: Cadence, pauses: set[str]) -> str | None:
    if follow_up.paused_at is not None:
        return "follow_up"
    if cadence_scope(cadence.id) in pauses:
        return "cadence"
    if BUSINESS in pauses:
        return "business"
    return None
