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
- cases open now by age: opened under a day ago, 1-3 days, 3-7 days, over 7 days;
- the "did we solve it?" checks sent in the period: how many the customer confirmed (solved),
  answered that it was not (the case reopened, or their reply went to a person) or left
  unanswered.
With a cadence or a product, the follow-ups, replies, ratings, checks and steps are those of its
steps or its sales.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select, true
from sqlalchemy.orm import Session, aliased

from scheduler.casework.notices import past_deadline
from scheduler.config import Config, OpeningHours
from scheduler.figures.first_answers import FirstAnswers, first_answers
from scheduler.figures.period import Period, PeriodError, period_from
from scheduler.figures.scope import EVERYTHING, Scope, of_scope, replies_of_scope, within
from scheduler.figures.tallies import IN_TIME, NO_REPLY, NOT_OBJECTED, RESOLVED, counted
from scheduler.lifecycle import CaseStatus, Direction, FollowUpStatus, RemedyStatus
from scheduler.models import (
    Cadence,
    CadenceStep,
    Case,
    Customer,
    FollowUp,
    LastSend,
    Message,
    Product,
    Remedy,
)
from scheduler.typed_text import unfit_character

REPLY_WINDOW = timedelta(days=7)  # as migration 0024's triggers judge `FollowUp.replied`
NAME_MOST = 200  # characters of a cadence's name or a product's SKU asked for
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


# The ages of open cases: (name, opened at least this long ago, and less than this), youngest
# first.
AGES: tuple[tuple[str, timedelta, timedelta | None], ...] = (
    ("under_1_day", timedelta(0), timedelta(days=1)),
    ("1_to_3_days", timedelta(days=1), timedelta(days=3)),
    ("3_to_7_days", timedelta(days=3), timedelta(days=7)),
    ("over_7_days", timedelta(days=7), None),
)


@dataclass(frozen=True)
class CaseCounts:
    opened: int
    resolved: int
    open_now: int
    overdue_now: int
    open_by_age: dict[str, int]  # AGES' names


@dataclass(frozen=True)
class Checks:
    """The "did we solve it?" follow-ups sent in the period, by what the customer said."""

    asked: int
    solved: int
    not_solved: int

    @property
    def no_answer(self) -> int:
        return self.asked - self.solved - self.not_solved


@dataclass(frozen=True)
class OptOuts:
    customers: int  # who said stop on at least one channel in the period
    by_channel: dict[str, int]
    messaged: int  # customers sent at least one follow-up in the period

    @property
    def share(self) -> float | None:
        return self.customers / self.messaged if self.messaged else None


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
    answered: int  # of `sent`, those with a reply within REPLY_WINDOW
    replies: int  # every reply received in the period
    nps: Nps
    nps_by_week: list[tuple[date, Nps]]
    cases: CaseCounts
    checks: Checks
    opt_outs: OptOuts
    first_answers: FirstAnswers
    remedies: dict[str, Remedies]  # by kind
    steps: list[StepFunnel]

    @property
    def sent(self) -> int:
        """Follow-ups sent in the period (sent or delivered): the steps' sum."""
        return sum(step.sent for step in self.steps)

    @property
    def reply_rate(self) -> float | None:
        return self.answered / self.sent if self.sent else None


def _counting(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many rows meet the condition, within one aggregate query."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


FigurePart = Callable[[Session], dict[str, Any]]  # some of Figures' fields, by name


def figure_parts(
    period: Period, *, now: datetime, opening: OpeningHours, scope: Scope = EVERYTHING
) -> list[FigurePart]:
    """The figures in independent parts, the slowest first: each reads what it needs on the
    session it is given, so that a page may run them on several connections at once."""
    return [
        partial(_opt_outs, period=period, now=now),
        partial(_funnel, period=period, scope=scope),
        partial(_first_answers, period=period, now=now, opening=opening),
        partial(_by_status, period=period, scope=scope),
        partial(_replies, period=period, scope=scope),
        partial(_cases, period=period, now=now),
        partial(_checks, period=period, scope=scope),
        partial(_remedies, period=period),
    ]


def figures(
    session: Session,
    period: Period,
    *,
    now: datetime,
    opening: OpeningHours,
    scope: Scope = EVERYTHING,
) -> Figures:
    parts = figure_parts(period, now=now, opening=opening, scope=scope)
    return assembled(period, [part(session) for part in parts])


def assembled(period: Period, parts: Iterable[dict[str, Any]]) -> Figures:
    """The figures of the period from its parts' fields (see `figure_parts`)."""
    fields: dict[str, Any] = {}
    for part in parts:
        fields.update(part)
    return Figures(period=period, **fields)


def _by_status(session: Session, *, period: Period, scope: Scope) -> dict[str, Any]:
    by_status: dict[str, dict[str, int]] = defaultdict(dict)
    due = counted(session, period, scope, when="due", by=("status", "channel"))
    for (status, channel), count in sorted(due.items(), key=str):
        by_status[str(status)][str(channel)] = count
    skipped = session.execute(
        of_scope(
            select(FollowUp.status_reason, func.count()).where(
                within(FollowUp.due_at, period), FollowUp.status == FollowUpStatus.SKIPPED
            ),
            scope,
        ).group_by(FollowUp.status_reason)
    )
    return {
        "follow_ups": dict(by_status),
        "skipped_because": {reason or "(no reason given)": count for reason, count in skipped},
    }


def asked(
    session: Session,
    first: str | None,
    last: str | None,
    cadence: str | None,
    *,
    product: str | None = None,
    config: Config,
    now: datetime,
) -> Figures:
    """The figures of the business's days `first`..`last` (see `period_from`: the 30 days to
    today by default), of the cadence so named and the product of that SKU, else of all: as
    the API and the dashboard are asked for them. Raises PeriodError naming the wrong field."""
    period, scope = asked_scope(session, first, last, cadence, product, config=config, now=now)
    return figures(session, period, now=now, opening=config.cases.opening_hours, scope=scope)


def asked_scope(
    session: Session,
    first: str | None,
    last: str | None,
    cadence: str | None,
    product: str | None,
    *,
    config: Config,
    now: datetime,
) -> tuple[Period, Scope]:
    """The period and the scope asked for, as `asked` reads them."""
    tz = config.business.tz
    period = period_from(first, last, tz=tz, today=now.astimezone(tz).date())
    for field, value in (("cadence", cadence), ("product", product)):
        unfit = unfit_character(value) if value is not None else None
        if value is not None and (unfit or len(value) > NAME_MOST):
            raise PeriodError(unfit or f"at most {NAME_MOST} characters", field)
    cadence_id = product_id = None
    if cadence is not None:
        cadence_id = session.scalar(select(Cadence.id).where(Cadence.name == cadence))
        if cadence_id is None:
            raise PeriodError(f"no cadence is called {cadence[:100]!r}", "cadence")
    if product is not None:
        product_id = session.scalar(select(Product.id).where(Product.sku == product))
        if product_id is None:
            raise PeriodError(f"no product has the SKU {product[:100]!r}", "product")
    return period, Scope(cadence_id, product_id)


def _replies(session: Session, *, period: Period, scope: Scope) -> dict[str, Any]:
    """The period's replies, and its NPS and each week's from those that rate us: one pass
    over the replies, bucketed by the database, each week's bounds being the business's local
    Mondays."""
    weeks = period.weeks()
    week = case(
        *[(Message.created_at < end, index) for index, (_day, end) in enumerate(weeks)],
        else_=len(weeks),
    ).label("week")

    query = select(
        week,
        func.count(),
        _counting(Message.score >= 9),
        _counting(and_(Message.score >= 7, Message.score <= 8)),
        _counting(Message.score <= 6),
    ).where(Message.direction == Direction.INBOUND, within(Message.created_at, period))
    query = replies_of_scope(query, scope)
    query = query.group_by(week)
    replies, counted = 0, dict[int, Nps]()
    for index, count, *rated in session.execute(query):
        replies += int(count)
        counted[int(index)] = Nps(*map(int, rated))
    by_week = [(day, counted.get(index, Nps())) for index, (day, _end) in enumerate(weeks)]
    total = Nps(
        sum(nps.promoters for _d, nps in by_week),
        sum(nps.passives for _d, nps in by_week),
        sum(nps.detractors for _d, nps in by_week),
    )
    return {"replies": replies, "nps": total, "nps_by_week": by_week}


def _cases(session: Session, *, period: Period, now: datetime) -> dict[str, Any]:
    """Read along the indexes of the three kinds of case counted (opened or resolved in the
    period, open now), not every case there ever was."""
    is_open = Case.status == CaseStatus.OPEN
    opened_in, resolved_in = within(Case.opened_at, period), within(Case.resolved_at, period)
    opened, resolved, open_now, overdue_now, *ages = map(
        int,
        session.execute(
            select(
                _counting(opened_in),
                _counting(resolved_in),
                _counting(is_open),
                _counting(past_deadline(now)),
                *(
                    _counting(
                        and_(
                            is_open,
                            Case.opened_at <= now - least,
                            Case.opened_at > now - most if most is not None else true(),
                        )
                    )
                    for _name, least, most in AGES
                ),
            ).where(or_(opened_in, resolved_in, is_open))
        ).one(),
    )
    by_age = {name: count for (name, _least, _most), count in zip(AGES, ages, strict=True)}
    return {"cases": CaseCounts(opened, resolved, open_now, overdue_now, by_age)}


def _checks(session: Session, *, period: Period, scope: Scope) -> dict[str, Any]:
    """A check's answer that needs no person confirms the case; one that does says it is not
    solved (the case reopens, or the reply joins another open case)."""
    answers = aliased(Message)
    said = exists().where(
        answers.follow_up_id == FollowUp.id, answers.direction == Direction.INBOUND
    )
    not_solved = exists().where(
        answers.follow_up_id == FollowUp.id,
        answers.direction == Direction.INBOUND,
        answers.needs_human.is_(True),
    )
    query = of_scope(
        select(func.count(), _counting(and_(said, ~not_solved)), _counting(not_solved)).where(
            FollowUp.case_id.is_not(None),
            FollowUp.status.in_(SENT),
            within(FollowUp.sent_at, period),
        ),
        scope,
    )
    asked_, solved, not_solved_ = session.execute(query).one()
    return {"checks": Checks(int(asked_), int(solved), int(not_solved_))}


OPT_OUT_COLUMNS = {
    "sms": Customer.sms_opt_out_at,
    "email": Customer.email_opt_out_at,
    "whatsapp": Customer.whatsapp_opt_out_at,
}


def _opt_outs(session: Session, *, period: Period, now: datetime) -> dict[str, Any]:
    said_stop = {name: within(column, period) for name, column in OPT_OUT_COLUMNS.items()}

    row = session.execute(
        select(
            _counting(or_(*said_stop.values())), *(_counting(c) for c in said_stop.values())
        ).where(or_(*(column.is_not(None) for column in OPT_OUT_COLUMNS.values())))
    ).one()
    return {
        "opt_outs": OptOuts(
            customers=int(row[0]),
            by_channel=dict(zip(OPT_OUT_COLUMNS, map(int, row[1:]), strict=True)),
            messaged=messaged(session, period, now=now),
        )
    }


RECENT = timedelta(days=7)  # a period ending since then is counted from the latest sends


def messaged(session: Session, period: Period, *, now: datetime) -> int:
    """The customers sent at least one follow-up in the period. For a period of these last
    days, from each customer's latest send (`LastSend`): those whose latest is in the period,
    and those whose latest came after it but who had one in it too, looked up one by one (a
    few days' customers at most). For an earlier one, the distinct customers of its sends
    (which a busy quarter counts over a million index entries)."""
    sent_in_period = and_(FollowUp.status.in_(SENT), within(FollowUp.sent_at, period))
    if period.end < now - RECENT:
        customers = (  # distinct, then counted: a hash of the customers, not a sort
            select(FollowUp.customer_id).distinct().where(sent_in_period).subquery()
        )
        return int(session.scalar(select(func.count()).select_from(customers)) or 0)
    also_then = exists().where(FollowUp.customer_id == LastSend.customer_id, sent_in_period)
    counted = select(func.count()).where(
        LastSend.sent_at >= period.start, or_(LastSend.sent_at < period.end, also_then)
    )
    return int(session.scalar(counted) or 0)


def _first_answers(
    session: Session, *, period: Period, now: datetime, opening: OpeningHours
) -> dict[str, Any]:
    """The cases of the period that were answered or whose deadline has come."""
    decided = and_(
        within(Case.opened_at, period),
        or_(Case.first_responded_at.is_not(None), Case.first_response_due_at <= now),
    )
    return {"first_answers": first_answers(session, decided, opening, period.tz)}


def _remedies(session: Session, *, period: Period) -> dict[str, Any]:
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
        "remedies": {
            kind: Remedies(int(given), Decimal(str(value)).quantize(CENTS), int(owner))
            for kind, given, value, owner in rows
        }
    }


def _funnel(session: Session, *, period: Period, scope: Scope) -> dict[str, Any]:
    """Each step's follow-ups sent in the period and what became of them, in the cadence's
    order (by the step's offset); and how many of them were answered within REPLY_WINDOW.
    All tallied by day with the follow-ups: sent, delivered, replied to (within the window or
    not: the database keeps `FollowUp.replied`) and objected to, the objection's case
    resolved or not (`FollowUp.objected`), each follow-up once whatever its replies."""
    counts: dict[Hashable, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    tallied = counted(
        session,
        period,
        scope,
        when="sent",
        by=("step_id", "status", "replied", "objected"),
        statuses=SENT,
    )
    for (step, status, replied, objected), count in tallied.items():
        counts[step][0] += count
        counts[step][1] += count if status == FollowUpStatus.DELIVERED else 0
        counts[step][2] += count if replied != NO_REPLY else 0
        counts[step][3] += count if objected != NOT_OBJECTED else 0
        counts[step][4] += count if objected == RESOLVED else 0
        counts[step][5] += count if replied == IN_TIME else 0
    named = session.execute(
        select(CadenceStep.id, Cadence.name, CadenceStep.key)
        .join(Cadence, Cadence.id == CadenceStep.cadence_id)
        .where(CadenceStep.id.in_(list(counts)))
        .order_by(Cadence.name, CadenceStep.offset_minutes, CadenceStep.key)
    ).all()
    funnels = [StepFunnel(name, key, *counts[step][:5]) for step, name, key in named]
    return {"steps": funnels, "answered": sum(step[5] for step in counts.values())}
