"""The dashboard's figures for a period, each counted by the database (one query per kind of
figure, whatever the number of rows): follow-ups by status and channel, replies and the reply
rate, NPS and its weekly trend, cases, opt-outs.

Definitions (the README repeats them for owners):
- a follow-up belongs to the period when it was due in it;
- the reply rate is the share of follow-ups sent in the period (sent or delivered) that got a
  reply within 7 days of going out;
- NPS: ratings 9-10 are promoters, 7-8 passives, 0-6 detractors; the score is promoters minus
  detractors as a percentage of the ratings, rounded; none without ratings;
- cases opened and resolved in the period; open now, and overdue now (open, unanswered, past
  the first-answer deadline);
- opt-outs: customers who said stop on some channel in the period, and their share of the
  customers messaged in the period;
- first answers: for the cases opened in the period and answered, the opening-hours minutes
  from the case to its first answer (median and 90th percentile, nearest rank), and the share
  answered by the deadline among those whose deadline has come or that were answered;
- remedies given in the period, by kind: how many, their value, how many needed the owner
  (asked for above a limit: approved, declined or still waiting);
- the funnel of each cadence step, for its follow-ups sent in the period: delivered, replied
  to, replied to with an objection, and how many of those objections' cases are resolved.
With a cadence, the follow-ups, replies, ratings and steps are those of its steps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from math import ceil
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from scheduler.casework.business_hours import opening_time_between
from scheduler.casework.notices import past_deadline
from scheduler.config import Config, OpeningHours
from scheduler.db import later_by
from scheduler.figures.period import Period, PeriodError, period_from
from scheduler.lifecycle import CaseStatus, Direction, FollowUpStatus, RemedyStatus
from scheduler.listening.classify import Label
from scheduler.models import Cadence, CadenceStep, Case, Customer, FollowUp, Message, Remedy

REPLY_WINDOW = timedelta(days=7)
CENTS = Decimal("0.01")
SENT = (FollowUpStatus.SENT, FollowUpStatus.DELIVERED)


@dataclass(frozen=True)
class Nps:
    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    @property
    def ratings(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def score(self) -> int | None:
        if not self.ratings:
            return None
        return round((self.promoters - self.detractors) * 100 / self.ratings)


@dataclass(frozen=True)
class CaseCounts:
    opened: int
    resolved: int
    open_now: int
    overdue_now: int


@dataclass(frozen=True)
class OptOuts:
    customers: int  # who said stop on at least one channel in the period
    by_channel: dict[str, int]
    messaged: int  # customers sent at least one follow-up in the period

    @property
    def share(self) -> float | None:
        return self.customers / self.messaged if self.messaged else None


@dataclass(frozen=True)
class FirstAnswers:
    minutes: list[int]  # opening-hours minutes to each first answer, smallest first
    on_time: int
    decided: int  # answered, or past the deadline unanswered

    def percentile(self, share: float) -> int | None:
        """Nearest rank: the smallest value that `share` of the answers do not exceed."""
        if not self.minutes:
            return None
        return self.minutes[max(0, ceil(share * len(self.minutes)) - 1)]

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.decided if self.decided else None


@dataclass(frozen=True)
class Remedies:
    given: int
    value: Decimal
    needed_owner: int


@dataclass(frozen=True)
class StepFunnel:
    cadence: str
    step: str
    sent: int
    delivered: int
    replied: int
    objections: int
    resolved: int


@dataclass(frozen=True)
class Figures:
    period: Period
    follow_ups: dict[str, dict[str, int]]  # status -> channel -> how many
    skipped_because: dict[str, int]
    sent: int
    answered: int  # of `sent`, those with a reply within REPLY_WINDOW
    replies: int  # every reply received in the period
    nps: Nps
    nps_by_week: list[tuple[date, Nps]]
    cases: CaseCounts
    opt_outs: OptOuts
    first_answers: FirstAnswers
    remedies: dict[str, Remedies]  # by kind
    steps: list[StepFunnel]

    @property
    def reply_rate(self) -> float | None:
        return self.answered / self.sent if self.sent else None


def within(column: InstrumentedAttribute[Any], period: Period) -> ColumnElement[bool]:
    return and_(column >= period.start, column < period.end)


def _counting(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many rows meet the condition, within one aggregate query."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _of_cadence(query: Select, cadence_id: int | None) -> Select:  # type: ignore[type-arg]
    """Only the follow-ups of this cadence's steps (the query reads FollowUp)."""
    if cadence_id is None:
        return query
    steps = select(CadenceStep.id).where(CadenceStep.cadence_id == cadence_id)
    return query.where(FollowUp.step_id.in_(steps))


def figures(
    session: Session,
    period: Period,
    *,
    now: datetime,
    opening: OpeningHours,
    cadence_id: int | None = None,
) -> Figures:
    by_status: dict[str, dict[str, int]] = defaultdict(dict)
    rows = session.execute(
        _of_cadence(
            select(FollowUp.status, FollowUp.channel, func.count()).where(
                within(FollowUp.due_at, period)
            ),
            cadence_id,
        ).group_by(FollowUp.status, FollowUp.channel)
    )
    for status, channel, count in rows:
        by_status[str(status)][str(channel)] = count
    skipped = session.execute(
        _of_cadence(
            select(FollowUp.status_reason, func.count()).where(
                within(FollowUp.due_at, period), FollowUp.status == FollowUpStatus.SKIPPED
            ),
            cadence_id,
        ).group_by(FollowUp.status_reason)
    )
    sent, answered = _answered(session, period, cadence_id)
    nps, nps_by_week = _nps_by_week(session, period, cadence_id)
    return Figures(
        period=period,
        follow_ups=dict(by_status),
        skipped_because={reason or "(no reason given)": count for reason, count in skipped},
        sent=sent,
        answered=answered,
        replies=_replies(session, period, cadence_id),
        nps=nps,
        nps_by_week=nps_by_week,
        cases=_cases(session, period, now),
        opt_outs=_opt_outs(session, period),
        first_answers=_first_answers(session, period, now, opening),
        remedies=_remedies(session, period),
        steps=_steps(session, period, cadence_id),
    )


def asked(
    session: Session,
    first: str | None,
    last: str | None,
    cadence: str | None,
    *,
    config: Config,
    now: datetime,
) -> Figures:
    """The figures of the business's days `first`..`last` (see `period_from`: the 30 days to
    today by default) and of the cadence so named, else of all: as the API and the dashboard
    are asked for them. Raises PeriodError naming the wrong field."""
    tz = config.business.tz
    period = period_from(first, last, tz=tz, today=now.astimezone(tz).date())
    cadence_id = None
    if cadence is not None:
        cadence_id = session.scalar(select(Cadence.id).where(Cadence.name == cadence))
        if cadence_id is None:
            raise PeriodError(f"no cadence is called {cadence[:100]!r}", "cadence")
    return figures(
        session, period, now=now, opening=config.cases.opening_hours, cadence_id=cadence_id
    )


def _answered(session: Session, period: Period, cadence_id: int | None) -> tuple[int, int]:
    """Follow-ups sent in the period, and how many of them got a reply within the window."""
    dialect = session.get_bind().dialect.name
    reply = aliased(Message)
    replied = exists().where(
        reply.follow_up_id == FollowUp.id,
        reply.direction == Direction.INBOUND,
        reply.created_at >= FollowUp.sent_at,
        reply.created_at <= later_by(FollowUp.sent_at, REPLY_WINDOW, dialect),
    )
    query = _of_cadence(
        select(func.count(), _counting(replied)).where(
            FollowUp.status.in_(SENT), within(FollowUp.sent_at, period)
        ),
        cadence_id,
    )
    sent, answered = session.execute(query).one()
    return int(sent), int(answered)


def _inbound(period: Period, cadence_id: int | None) -> Select:  # type: ignore[type-arg]
    query = select(Message).where(
        Message.direction == Direction.INBOUND, within(Message.created_at, period)
    )
    if cadence_id is not None:
        query = _of_cadence(query.join(FollowUp, FollowUp.id == Message.follow_up_id), cadence_id)
    return query


def _replies(session: Session, period: Period, cadence_id: int | None) -> int:
    query = _inbound(period, cadence_id).with_only_columns(func.count()).select_from(Message)
    return int(session.scalar(query) or 0)


def _nps_by_week(
    session: Session, period: Period, cadence_id: int | None
) -> tuple[Nps, list[tuple[date, Nps]]]:
    """The period's NPS and each week's, from the ratings received: bucketed by the database,
    each week's bounds being the business's local Mondays."""
    weeks = period.weeks()
    week = case(
        *[(Message.created_at < end, index) for index, (_day, end) in enumerate(weeks)],
        else_=len(weeks),
    ).label("week")

    query = (
        _inbound(period, cadence_id)
        .with_only_columns(
            week,
            _counting(Message.score >= 9),
            _counting(and_(Message.score >= 7, Message.score <= 8)),
            _counting(Message.score <= 6),
        )
        .select_from(Message)
        .where(Message.score.is_not(None))
        .group_by(week)
    )
    counted = {int(index): Nps(*map(int, counts)) for index, *counts in session.execute(query)}
    by_week = [(day, counted.get(index, Nps())) for index, (day, _end) in enumerate(weeks)]
    total = Nps(
        sum(nps.promoters for _d, nps in by_week),
        sum(nps.passives for _d, nps in by_week),
        sum(nps.detractors for _d, nps in by_week),
    )
    return total, by_week


def _cases(session: Session, period: Period, now: datetime) -> CaseCounts:
    row = session.execute(
        select(
            _counting(within(Case.opened_at, period)),
            _counting(and_(Case.resolved_at.is_not(None), within(Case.resolved_at, period))),
            _counting(Case.status == CaseStatus.OPEN),
            _counting(past_deadline(now)),
        )
    ).one()
    return CaseCounts(*map(int, row))


OPT_OUT_COLUMNS = {
    "sms": Customer.sms_opt_out_at,
    "email": Customer.email_opt_out_at,
    "whatsapp": Customer.whatsapp_opt_out_at,
}


def _opt_outs(session: Session, period: Period) -> OptOuts:
    said_stop = {name: within(column, period) for name, column in OPT_OUT_COLUMNS.items()}

    row = session.execute(
        select(
            _counting(or_(*said_stop.values())), *(_counting(c) for c in said_stop.values())
        ).where(or_(*(column.is_not(None) for column in OPT_OUT_COLUMNS.values())))
    ).one()
    messaged = session.scalar(
        select(func.count(FollowUp.customer_id.distinct())).where(
            FollowUp.status.in_(SENT), within(FollowUp.sent_at, period)
        )
    )
    return OptOuts(
        customers=int(row[0]),
        by_channel=dict(zip(OPT_OUT_COLUMNS, map(int, row[1:]), strict=True)),
        messaged=int(messaged or 0),
    )


def _first_answers(
    session: Session, period: Period, now: datetime, opening: OpeningHours
) -> FirstAnswers:
    """The cases of the period that were answered or whose deadline has come."""
    rows = session.execute(
        select(Case.opened_at, Case.first_responded_at, Case.first_response_due_at).where(
            within(Case.opened_at, period),
            or_(Case.first_responded_at.is_not(None), Case.first_response_due_at <= now),
        )
    ).all()
    return first_answers(rows, opening, period.tz)


def first_answers(
    cases: Sequence[tuple[datetime, datetime | None, datetime]],
    opening: OpeningHours,
    tz: ZoneInfo,
) -> FirstAnswers:
    """From each decided case's (opened, first answered or None, deadline): the opening-hours
    minutes to each first answer (counted here: opening hours are the business's own), and
    how many came by the deadline."""
    answered = [(opened, first, due) for opened, first, due in cases if first is not None]
    minutes = sorted(
        int(opening_time_between(opened, first, opening, tz).total_seconds() // 60)
        for opened, first, _due in answered
    )
    on_time = len([first for _opened, first, due in answered if first <= due])
    return FirstAnswers(minutes, on_time, len(cases))


def _remedies(session: Session, period: Period) -> dict[str, Remedies]:
    asked_owner = or_(Remedy.approved_by_id.is_not(None), Remedy.status != RemedyStatus.GRANTED)
    rows = session.execute(
        select(
            Remedy.kind,
            _counting(Remedy.status == RemedyStatus.GRANTED),
            func.coalesce(
                func.sum(case((Remedy.status == RemedyStatus.GRANTED, Remedy.value), else_=0)),
                0,
            ),
            _counting(asked_owner),
        )
        .where(within(Remedy.created_at, period))
        .group_by(Remedy.kind)
        .order_by(Remedy.kind)
    )
    return {
        kind: Remedies(int(given), Decimal(str(value)).quantize(CENTS), int(owner))
        for kind, given, value, owner in rows
    }


def _steps(session: Session, period: Period, cadence_id: int | None) -> list[StepFunnel]:
    """Each step's follow-ups sent in the period and what became of them, in the cadence's
    order (by the step's offset)."""
    reply = aliased(Message)
    objection = aliased(Message)
    replied = exists().where(
        reply.follow_up_id == FollowUp.id, reply.direction == Direction.INBOUND
    )
    objected = exists().where(
        objection.follow_up_id == FollowUp.id,
        objection.direction == Direction.INBOUND,
        objection.label == Label.OBJECTION.value,
    )
    resolved = exists().where(
        objection.follow_up_id == FollowUp.id,
        objection.direction == Direction.INBOUND,
        objection.label == Label.OBJECTION.value,
        objection.case_id == Case.id,
        Case.status == CaseStatus.RESOLVED,
    )
    query = (
        select(
            Cadence.name,
            CadenceStep.key,
            func.count(),
            _counting(FollowUp.status == FollowUpStatus.DELIVERED),
            _counting(replied),
            _counting(objected),
            _counting(resolved),
        )
        .select_from(FollowUp)
        .join(CadenceStep, CadenceStep.id == FollowUp.step_id)
        .join(Cadence, Cadence.id == CadenceStep.cadence_id)
        .where(FollowUp.status.in_(SENT), within(FollowUp.sent_at, period))
        .group_by(Cadence.name, CadenceStep.key, CadenceStep.offset_minutes)
        .order_by(Cadence.name, CadenceStep.offset_minutes, CadenceStep.key)
    )
    if cadence_id is not None:
        query = query.where(CadenceStep.cadence_id == cadence_id)
    return [
        StepFunnel(name, key, *map(int, counts)) for name, key, *counts in session.execute(query)
    ]
