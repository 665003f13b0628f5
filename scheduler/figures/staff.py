"""A person's own figures, shown on their inbox: the cases they answered in the period, how
long the ones they answered first had waited (in opening hours), and the team's overdue cases
now, which are everyone's to pick up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from scheduler.casework.notices import past_deadline
from scheduler.config import OpeningHours
from scheduler.figures.first_answers import FirstAnswers, first_answers
from scheduler.figures.period import Period
from scheduler.figures.scope import within
from scheduler.models import Case, Message


@dataclass(frozen=True)
class StaffFigures:
    answered_cases: int  # cases this person wrote to in the period
    first_answers: FirstAnswers  # of the cases whose first answer was theirs, opened in it
    team_overdue: int


def _first_answerer() -> ColumnElement[int | None]:
    """Who wrote a case's first answer: the person of its earliest message sent by a person."""
    return (
        select(Message.sent_by_id)
        .where(Message.case_id == Case.id, Message.sent_by_id.is_not(None))
        .order_by(Message.created_at, Message.id)
        .limit(1)
        .correlate(Case)
        .scalar_subquery()
    )


def staff_figures(
    session: Session, user_id: int, period: Period, *, now: datetime, opening: OpeningHours
) -> StaffFigures:
    answered = session.scalar(
        select(func.count(Message.case_id.distinct())).where(
            Message.sent_by_id == user_id,
            Message.case_id.is_not(None),
            within(Message.created_at, period),
        )
    )
    theirs = and_(
        within(Case.opened_at, period),
        Case.first_responded_at.is_not(None),
        _first_answerer() == user_id,
    )
    team_overdue = session.scalar(select(func.count()).select_from(Case).where(past_deadline(now)))
    return StaffFigures(
        answered_cases=int(answered or 0),
        first_answers=first_answers(session, theirs, opening, period.tz),
        team_overdue=int(team_overdue or 0),
    )
