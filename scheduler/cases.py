"""Cases: a customer's objection in a person's hands. While one is open, follow-ups wait."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.business_hours import add_opening_hours
from scheduler.config import Config
from scheduler.follow_ups import hold_pending, resume_held
from scheduler.lifecycle import CaseStatus, check_case_transition
from scheduler.models import Case, Customer, Message


def open_case_for(
    session: Session, customer: Customer, message: Message, *, reason: str, config: Config,
    now: datetime,
) -> tuple[Case, bool]:  # fmt: skip
    """The customer's open case, with `message` in it; opened now if there was none (with its
    first-response deadline in opening hours, and the customer's follow-ups held). The flag
    says whether it was opened now. One open case per customer, even when two replies race."""
    case = session.scalar(
        select(Case).where(Case.customer_id == customer.id, Case.status == CaseStatus.OPEN)
    )
    opened = False
    if case is None:
        due = add_opening_hours(
            now, config.cases.first_response_hours, config.cases.opening_hours, config.business.tz
        )
        try:
            with session.begin_nested():
                case = Case(
                    customer_id=customer.id, reason=reason, opened_at=now,
                    first_response_due_at=due,
                )  # fmt: skip
                session.add(case)
            opened = True
        except IntegrityError:
            case = session.scalars(
                select(Case).where(Case.customer_id == customer.id, Case.status == CaseStatus.OPEN)
            ).one()
    if opened:
        held = hold_pending(session, customer.id, now=now)
        audit.record(
            session, at=now, actor="customer", action="case.open", entity_type="case",
            entity_id=case.id, reason=reason, follow_ups_held=held,
        )  # fmt: skip
    message.case_id = case.id
    return case, opened


def resolve_case(
    session: Session, case: Case, *, outcome: str, now: datetime, actor: str, config: Config
) -> int:
    """Close the case with its outcome and let the customer's held follow-ups go out again,
    re-timed from now; returns how many were resumed."""
    check_case_transition(case.status, CaseStatus.RESOLVED)
    case.status, case.resolved_at, case.outcome = CaseStatus.RESOLVED, now, outcome
    resumed = resume_held(session, case.customer_id, config=config, now=now)
    audit.record(
        session, at=now, actor=actor, action="case.resolve", entity_type="case",
        entity_id=case.id, outcome=outcome, follow_ups_resumed=resumed,
    )  # fmt: skip
    return resumed
