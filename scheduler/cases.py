"""Cases: a customer's objection in a person's hands. While one is open, follow-ups wait."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.config import Config
from scheduler.follow_ups import resume_held
from scheduler.lifecycle import CaseStatus, check_case_transition
from scheduler.models import Case


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
