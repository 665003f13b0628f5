"""Customers at risk: the silent ones, who may leave without ever complaining.

A customer is at risk for a period when, in it:
- follow-ups to them failed to arrive, and nothing reached them since (UNDELIVERED), or their
  email address bounced (BOUNCED);
- they gave a score of 0-6 and not a word with it (SILENT_SCORE);
- they said a resolved case of theirs was not solved, and it opened again (REOPENED);
- they bought more than once, and answered none of their last `QUIET_AFTER` follow-ups, the
  latest of which went out in the period, at least `ANSWER_TIME` ago (GONE_QUIET).
Each sign is found by one query; only the few low scores are read here, for words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from scheduler.db import chunked
from scheduler.figures.period import Period
from scheduler.figures.scope import within
from scheduler.figures.summary import SENT
from scheduler.lifecycle import CaseStatus, Direction, FollowUpStatus, SaleStatus
from scheduler.listening.classify import NUMBER_WORDS, words_of
from scheduler.listening.keywords import fold
from scheduler.models import AuditEntry, Case, Customer, FollowUp, Message, Sale

QUIET_AFTER = 3  # follow-ups in a row with no answer
ANSWER_TIME = timedelta(days=2)  # how long a follow-up waits for its answer before it counts
LOW_SCORE = 6
# Words that go with a bare rating ("un 3", "2 de 10", "1 star"): no more than a number.
_RATING_WORDS = frozenset(
    "de sobre out of un una a nota puntaje score rating le doy give it i estrella estrellas "
    "star stars".split()
) | frozenset(NUMBER_WORDS)


class Sign(StrEnum):
    UNDELIVERED = "undelivered"
    BOUNCED = "bounced"
    SILENT_SCORE = "silent_score"
    REOPENED = "reopened"
    GONE_QUIET = "gone_quiet"


@dataclass(frozen=True)
class Signal:
    sign: Sign
    at: datetime  # the latest time it showed
    count: int  # follow-ups failed, the score, times reopened, follow-ups unanswered


@dataclass(frozen=True)
class Signs:
    """A customer's signs of risk, the latest first."""

    customer_id: int
    signals: tuple[Signal, ...]

    @property
    def latest(self) -> datetime:
        return self.signals[0].at


@dataclass(frozen=True)
class AtRisk(Signs):
    """A customer at risk as a list shows them: named, with their open case if any."""

    name: str
    open_case_id: int | None  # a person already has them


def at_risk(session: Session, period: Period, *, now: datetime) -> list[Signs]:
    """Every customer at risk in the period, the latest signs first (see `described` for their
    names: a page shows only some)."""
    found: dict[int, list[Signal]] = {}
    for signals in (
        _undelivered(session, period),
        _bounced(session, period),
        _silent_scores(session, period),
        _reopened(session, period),
        _gone_quiet(session, period, now),
    ):
        for customer_id, signal in signals:
            found.setdefault(customer_id, []).append(signal)
    risks = [
        Signs(customer_id, tuple(sorted(signals, key=lambda signal: signal.at, reverse=True)))
        for customer_id, signals in found.items()
    ]
    return sorted(risks, key=lambda risk: (risk.latest, risk.customer_id), reverse=True)


def described(session: Session, risks: Sequence[Signs]) -> list[AtRisk]:
    """The customers with their names and open cases, in the same order."""
    found: dict[int, tuple[str, int | None]] = {}
    for chunk in chunked([risk.customer_id for risk in risks]):
        rows = session.execute(  # an open case at most each (a unique index)
            select(Customer.id, Customer.name, Case.id)
            .outerjoin(Case, and_(Case.customer_id == Customer.id, Case.status == CaseStatus.OPEN))
            .where(Customer.id.in_(chunk))
        )
        found.update((customer, (name, case)) for customer, name, case in rows)
    return [AtRisk(risk.customer_id, risk.signals, *found[risk.customer_id]) for risk in risks]


def wordless(text: str) -> bool:
    """Whether a reply holds a rating and nothing more ("3", "2/10", "un 4 👎")."""
    return not any(
        word.isalpha() and len(word) > 1 and word not in _RATING_WORDS
        for word in words_of(fold(text))
    )


def _undelivered(session: Session, period: Period) -> Iterable[tuple[int, Signal]]:
    later = aliased(FollowUp)
    arrived_since = exists().where(
        later.customer_id == FollowUp.customer_id,
        later.status.in_(SENT),
        later.sent_at > FollowUp.updated_at,
    )
    rows = session.execute(
        select(FollowUp.customer_id, func.max(FollowUp.updated_at), func.count())
        .where(
            FollowUp.status == FollowUpStatus.FAILED,
            within(FollowUp.due_at, period),
            ~arrived_since,
        )
        .group_by(FollowUp.customer_id)
    )
    return ((customer, Signal(Sign.UNDELIVERED, at, count)) for customer, at, count in rows)


def _bounced(session: Session, period: Period) -> Iterable[tuple[int, Signal]]:
    rows = session.execute(
        select(Customer.id, Customer.email_bounced_at).where(
            within(Customer.email_bounced_at, period)
        )
    )
    return ((customer, Signal(Sign.BOUNCED, at, 1)) for customer, at in rows if at is not None)


def _silent_scores(session: Session, period: Period) -> Iterable[tuple[int, Signal]]:
    rows = session.execute(
        select(Message.customer_id, Message.created_at, Message.score, Message.body)
        .where(
            Message.direction == Direction.INBOUND,
            Message.score <= LOW_SCORE,
            Message.customer_id.is_not(None),
            within(Message.created_at, period),
        )
        .order_by(Message.created_at)
    )
    latest = {  # each customer's last, the rows being in time order
        customer: Signal(Sign.SILENT_SCORE, at, score)
        for customer, at, score, body in rows
        if customer is not None and score is not None and wordless(body)
    }
    return latest.items()


def _reopened(session: Session, period: Period) -> Iterable[tuple[int, Signal]]:
    rows = session.execute(
        select(Case.customer_id, func.max(AuditEntry.at), func.count())
        .join(Case, Case.id == AuditEntry.entity_id)
        .where(
            AuditEntry.action == "case.reopen",
            AuditEntry.entity_type == "case",
            within(AuditEntry.at, period),
        )
        .group_by(Case.customer_id)
    )
    return ((customer, Signal(Sign.REOPENED, at, count)) for customer, at, count in rows)


def _gone_quiet(session: Session, period: Period, now: datetime) -> Iterable[tuple[int, Signal]]:
    """Repeat buyers whose last follow-ups up to the period's end (those old enough to have
    been answered) all went unanswered, the latest of them sent in the period. Each customer
    sent something in the period is looked up in a few steps of an index: a second purchase,
    their QUIET_AFTER-th latest follow-up, their latest reply."""
    until = min(period.end, now - ANSWER_TIME + timedelta(microseconds=1))  # excluded
    sent = and_(FollowUp.status.in_(SENT), FollowUp.sent_at < until)
    latest = (
        select(FollowUp.customer_id, func.max(FollowUp.sent_at).label("latest"))
        .where(sent, FollowUp.sent_at >= period.start)
        .group_by(FollowUp.customer_id)
        .subquery()
    )
    bought_again = (  # a second purchase, whichever it is: no order to sort by
        select(Sale.id)
        .where(Sale.customer_id == latest.c.customer_id, Sale.status == SaleStatus.ACTIVE)
        .offset(1)
        .limit(1)
        .exists()
    )
    since = (
        select(FollowUp.sent_at)
        .where(FollowUp.customer_id == latest.c.customer_id, sent)
        .order_by(FollowUp.sent_at.desc())
        .offset(QUIET_AFTER - 1)
        .limit(1)
        .scalar_subquery()
    )
    last_reply = (
        select(func.max(Message.created_at))
        .where(Message.customer_id == latest.c.customer_id, Message.direction == Direction.INBOUND)
        .scalar_subquery()
    )
    looked_up = (
        select(
            latest.c.customer_id,
            latest.c.latest,
            since.label("since"),
            last_reply.label("replied"),
        )
        .where(bought_again)
        .offset(0)  # each customer looked up once, not again for each use of a column below
        .subquery()
    )
    rows = session.execute(
        select(looked_up.c.customer_id, looked_up.c.latest).where(
            looked_up.c.since.is_not(None),
            or_(looked_up.c.replied.is_(None), looked_up.c.replied < looked_up.c.since),
        )
    )
    return ((customer, Signal(Sign.GONE_QUIET, at, QUIET_AFTER)) for customer, at in rows)
