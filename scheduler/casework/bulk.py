"""One action on many cases at once, from the inbox: assign them, resolve them with one outcome,
or add one note to each. Each case is changed and recorded on its own, as if done one by one
(its own audit entry, its held follow-ups resumed, its own "did we solve it?"); a case that
refuses to be resolved (resolved meanwhile, a remedy waiting for the owner) is reported and the
others go on. Assigning and noting, as on a case's own page, apply to any case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.casework.cases import resolve_case
from scheduler.casework.staff_actions import (
    MAX_EMAIL,
    CaseworkError,
    actor,
    add_note,
    assign,
    written,
)
from scheduler.config import Config
from scheduler.models import Case, User

MOST = 200  # cases at once: four pages of the inbox


class BulkAction(StrEnum):
    ASSIGN = "assign"
    RESOLVE = "resolve"
    NOTE = "note"


@dataclass(frozen=True)
class BulkOutcome:
    done: list[int] = field(default_factory=list)  # the cases changed, by id
    refused: dict[int, str] = field(default_factory=dict)  # case id: why not


def on_cases(
    session: Session,
    case_ids: Sequence[int],
    action: BulkAction,
    *,
    user: User,
    assignee: User | None = None,
    text: str = "",
    config: Config,
    now: datetime,
) -> BulkOutcome:
    """Apply the action to each case, each in a savepoint of its own, locked in the order of
    their ids (two people acting on the same cases take turns, never deadlock). Raises
    CaseworkError, changing nothing, when the action itself cannot be done (no case chosen,
    too many, an empty note or outcome)."""
    wanted = sorted(set(case_ids))
    if not wanted:
        raise CaseworkError("choose at least one case")
    if len(wanted) > MOST:
        raise CaseworkError(f"at most {MOST} cases at once")
    if action is BulkAction.NOTE:
        text = written(text, empty="the note is empty", what="a note", most=MAX_EMAIL)
    elif action is BulkAction.RESOLVE:
        text = written(text, empty="say how it was resolved", what="an outcome", most=2_000)
    cases = session.scalars(
        select(Case).where(Case.id.in_(wanted)).order_by(Case.id).with_for_update()
    ).all()
    outcome = BulkOutcome()
    for missing in sorted(set(wanted) - {case.id for case in cases}):
        outcome.refused[missing] = "no such case"
    for case in cases:
        try:
            with session.begin_nested():
                if action is BulkAction.ASSIGN:
                    assign(session, case, assignee, by=user, now=now)
                elif action is BulkAction.NOTE:
                    add_note(session, case, author=user, body=text, now=now)
                else:
                    resolve_case(
                        session, case, outcome=text, now=now, actor=actor(user), config=config
                    )
        except CaseworkError as error:
            outcome.refused[case.id] = str(error)
        else:
            outcome.done.append(case.id)
    return outcome
