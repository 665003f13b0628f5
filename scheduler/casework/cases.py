"""Cases: a customer's objection in a person's hands. While one is open, follow-ups wait."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.casework.business_hours import add_opening_hours
from scheduler.casework.staff_actions import CaseworkError, actor, written
from scheduler.config import Config
from scheduler.lifecycle import (
    PENDING,
    CaseStatus,
    FollowUpStatus,
    RemedyStatus,
    SaleStatus,
    check_case_transition,
)
from scheduler.models import (
    Case,
    CaseNote,
    Customer,
    FollowUp,
    Message,
    Remedy,
    Sale,
    User,
    nothing_in_flight,
)
from scheduler.sending.planning import schedule_case_check
from scheduler.sending.replanning import hold_pending, resume_held

AT_RISK = "at_risk"  # the reason of a case a person opened for a customer at risk


def open_case_for(
    session: Session,
    customer: Customer,
    message: Message,
    *,
    reason: str,
    config: Config,
    now: datetime,
) -> tuple[Case, bool]:
    """The customer's open case, with `message` in it; opened now if there was none (with its
    first-response deadline in opening hours, and the customer's follow-ups held). The flag
    says whether it was opened now. One open case per customer, even when two replies race."""
    case, opened = _open_case(session, customer, reason, actor="customer", config=config, now=now)
    message.case_id = case.id
    return case, opened


def open_case_by_hand(
    session: Session, customer: Customer, *, why: str, by: User, config: Config, now: datetime
) -> tuple[Case, bool]:
    """A case a person opens for a customer nobody heard complain (one at risk), with why in
    a note; their open case if they have one. The flag says whether it was opened now."""
    why = written(why, empty="say why the case is opened", what="the reason", most=2_000)
    case, opened = _open_case(session, customer, AT_RISK, actor=actor(by), config=config, now=now)
    if opened:
        session.add(CaseNote(case_id=case.id, author_id=by.id, body=why, created_at=now))
    return case, opened


def _open_case(
    session: Session, customer: Customer, reason: str, *, actor: str, config: Config, now: datetime
) -> tuple[Case, bool]:
    case = session.scalar(
        select(Case)
        .where(Case.customer_id == customer.id, Case.status == CaseStatus.OPEN)
        .with_for_update()  # a person resolving it right now goes first, then this sees it closed
    )
    if case is not None:
        return case, False
    due = add_opening_hours(
        now, config.cases.first_response_hours, config.cases.opening_hours, config.business.tz
    )
    try:
        with session.begin_nested():
            case = Case(
                customer_id=customer.id, reason=reason, opened_at=now, first_response_due_at=due
            )
            session.add(case)
    except IntegrityError:  # opened by another at the same moment: that one it is
        case = session.scalars(
            select(Case).where(Case.customer_id == customer.id, Case.status == CaseStatus.OPEN)
        ).one()
        return case, False
    held = hold_pending(session, customer.id, now=now)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="case.open",
        entity_type="case",
        entity_id=case.id,
        reason=reason,
        follow_ups_held=held,
    )
    return case, True


NO_SALE = "the customer has no active sale to follow up on"
NO_CHANNEL = "the customer has opted out of every channel we could ask on"


@dataclass(frozen=True)
class Resolution:
    resumed: int  # held follow-ups that go out again
    check_due: datetime | None  # when "did we solve it?" is asked; None: see `no_check`
    no_check: str | None = None  # why nobody will ask (NO_SALE, NO_CHANNEL)


def resolve_case(
    session: Session, case: Case, *, outcome: str, now: datetime, actor: str, config: Config
) -> Resolution:
    """Close the case with its outcome, let the customer's held follow-ups go out again,
    re-timed from now, and plan "did we solve it?". Refused (CaseworkError) while a remedy waits
    for the owner: the customer would be told it is solved before anyone decided what they get.
    """
    if case.status is CaseStatus.RESOLVED:
        raise CaseworkError("the case is already resolved")
    check_case_transition(case.status, CaseStatus.RESOLVED)
    outcome = written(outcome, empty="say how it was resolved", what="an outcome", most=2_000)
    waiting = session.scalar(
        select(Remedy.id)
        .where(Remedy.case_id == case.id, Remedy.status == RemedyStatus.REQUESTED)
        .limit(1)
    )
    if waiting is not None:
        raise CaseworkError(
            "a remedy still waits for the owner's answer: withdraw it or ask the owner"
        )
    case.status, case.resolved_at, case.outcome = CaseStatus.RESOLVED, now, outcome
    resumed = resume_held(session, case.customer_id, config=config, now=now)
    customer = session.get_one(Customer, case.customer_id)
    checks = schedule_case_check(session, case.id, customer, config=config, now=now)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="case.resolve",
        entity_type="case",
        entity_id=case.id,
        outcome=outcome,
        follow_ups_resumed=resumed,
        check_planned=checks,
    )
    check_due = session.scalar(
        select(FollowUp.due_at).where(FollowUp.case_id == case.id, FollowUp.status.in_(PENDING))
    )
    if check_due is not None:
        return Resolution(resumed, check_due)
    has_sale = session.scalar(
        select(Sale.id).where(Sale.customer_id == customer.id, Sale.status == SaleStatus.ACTIVE)
    )
    return Resolution(resumed, None, NO_CHANNEL if has_sale else NO_SALE)


def reopen_case(
    session: Session, case: Case, message: Message, *, config: Config, now: datetime
) -> None:
    """The customer says it is not solved: the same case opens again, with a new deadline, and
    its "did we solve it?" is not asked again while it is open."""
    check_case_transition(case.status, CaseStatus.OPEN)
    case.status, case.resolved_at = CaseStatus.OPEN, None
    case.first_responded_at, case.escalation_level = None, 0
    case.first_answer_minutes = case.minutes_counted_with = None  # its next answer's, then
    case.reopened_count += 1
    case.first_response_due_at = add_opening_hours(
        now, config.cases.first_response_hours, config.cases.opening_hours, config.business.tz
    )
    message.case_id = case.id
    for row in session.scalars(
        select(FollowUp).where(
            FollowUp.case_id == case.id, FollowUp.status.in_(PENDING), nothing_in_flight()
        )
    ):
        row.move_to(FollowUpStatus.CANCELLED, "the case was reopened", now)
    held = hold_pending(session, case.customer_id, now=now)
    audit.record(
        session,
        at=now,
        actor="customer",
        action="case.reopen",
        entity_type="case",
        entity_id=case.id,
        times=case.reopened_count,
        follow_ups_held=held,
    )


def deadline_words(due: datetime, now: datetime, tz: ZoneInfo, locale: str) -> str:
    """When a person will answer, as the customer would say it: "hoy antes de las 14:00",
    "tomorrow before 11:00 AM", "el lunes 30 de noviembre antes de las 11:00"."""
    from babel.dates import format_date, format_time  # here: a dispatch pass needs no Babel

    local_due, today = due.astimezone(tz), now.astimezone(tz).date()
    # Babel puts a narrow no-break space before "AM": one such character makes a whole SMS UCS-2.
    time_text = " ".join(format_time(local_due, "short", locale=locale).split())
    spanish = locale == "es"
    if local_due.date() == today:
        day = "hoy" if spanish else "today"
    elif local_due.date() == today + timedelta(days=1):
        day = "mañana" if spanish else "tomorrow"
    elif spanish:
        day = "el " + format_date(local_due, "EEEE d 'de' MMMM", locale="es")
    else:
        day = "on " + format_date(local_due, "EEEE, MMMM d", locale="en")
    return f"{day} antes de las {time_text}" if spanish else f"{day} before {time_text}"
