"""Holding follow-ups back, and letting them go again: one or many follow-ups (a person's
choice, each recorded), a cadence's (a recall), or the whole business's (a holiday).

Nothing is re-planned. A paused follow-up keeps its status and due time, and the worker's
claim passes over it (`may_go`); once resumed it goes when it falls due, or at once if it
fell due meanwhile, unless the late-grace rule finds it too late to still make sense (then it
is skipped with why, as any late follow-up is). Follow-ups already claimed when a pause
begins finish going out: a pause stops what has not started.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, not_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.db import Among
from scheduler.lifecycle import PENDING, FollowUpStatus
from scheduler.models import Cadence, CadenceStep, FollowUp, SendingPause
from scheduler.typed_text import typed_text

BUSINESS = "business"
REASON_MOST = 500
MOST = 200  # follow-ups changed by one request


class PauseError(ValueError):
    """A pause or resumption that cannot be made; says why, in words for the admin."""


def cadence_scope(cadence_id: int) -> str:
    return f"cadence:{cadence_id}"


def may_go() -> ColumnElement[bool]:
    """A follow-up the worker may claim: not paused itself, nor its cadence, nor the business."""
    open_pause = SendingPause.resumed_at.is_(None)
    business = exists().where(open_pause, SendingPause.scope == BUSINESS)
    paused_cadences = select(SendingPause.cadence_id).where(
        open_pause, SendingPause.cadence_id.is_not(None)
    )
    paused_steps = select(CadenceStep.id).where(CadenceStep.cadence_id.in_(paused_cadences))
    return and_(FollowUp.paused_at.is_(None), not_(business), FollowUp.step_id.not_in(paused_steps))


def reason_of(text: str | None) -> str:
    return typed_text(text, empty="say why", what="a reason", most=REASON_MOST, error=PauseError)


def open_pauses(session: Session) -> list[tuple[SendingPause, Cadence | None]]:
    """The pauses in force, the business's first, with their cadences."""
    rows = session.execute(
        select(SendingPause, Cadence)
        .outerjoin(Cadence, Cadence.id == SendingPause.cadence_id)
        .where(SendingPause.resumed_at.is_(None))
        .order_by(SendingPause.cadence_id.is_not(None), SendingPause.paused_at)
    )
    return [(pause, cadence) for pause, cadence in rows]


def pause(
    session: Session, cadence: Cadence | None, reason: str, *, now: datetime, actor: str
) -> SendingPause:
    """Hold back the business's follow-ups (`cadence` None) or one cadence's, until resumed.
    PauseError when it is paused already."""
    scope = cadence_scope(cadence.id) if cadence else BUSINESS
    row = SendingPause(
        scope=scope,
        cadence_id=cadence.id if cadence else None,
        reason=reason_of(reason),
        paused_at=now,
        paused_by=actor,
    )
    try:
        with session.begin_nested():  # two owners pausing at once: one pause
            session.add(row)
    except IntegrityError:
        raise PauseError("already paused") from None
    audit.record(
        session,
        at=now,
        actor=actor,
        action="sending.pause",
        entity_type="cadence" if cadence else "settings",
        entity_id=cadence.id if cadence else None,
        reason=row.reason,
    )
    return row


def resume(session: Session, cadence: Cadence | None, *, now: datetime, actor: str) -> None:
    """End the business's pause (`cadence` None) or the cadence's; PauseError when none is on."""
    scope = cadence_scope(cadence.id) if cadence else BUSINESS
    row = session.scalar(
        select(SendingPause)
        .where(SendingPause.scope == scope, SendingPause.resumed_at.is_(None))
        .with_for_update()
    )
    if row is None:
        raise PauseError("not paused")
    row.resumed_at, row.resumed_by = now, actor
    audit.record(
        session,
        at=now,
        actor=actor,
        action="sending.resume",
        entity_type="cadence" if cadence else "settings",
        entity_id=cadence.id if cadence else None,
        paused_at=row.paused_at.isoformat(),
    )


def change_follow_ups(
    session: Session,
    ids: Sequence[int],
    action: str,
    reason: str | None,
    *,
    now: datetime,
    actor: str,
) -> tuple[int, dict[int, str]]:
    """Pause, resume or cancel each follow-up of `ids` (at most MOST): each locked, changed
    and recorded on its own. Returns how many changed, and why each other one did not (gone
    out meanwhile, already paused...). Pausing and cancelling need a reason."""
    if action not in ("pause", "resume", "cancel"):
        raise PauseError("choose pause, resume or cancel")
    if not ids:
        raise PauseError("tick at least one follow-up")
    if len(ids) > MOST:
        raise PauseError(f"at most {MOST} follow-ups at once")
    why = reason_of(reason) if action != "resume" else (reason or "").strip()[:REASON_MOST]
    rows = session.scalars(
        select(FollowUp).where(Among(FollowUp.id, ids)).order_by(FollowUp.id).with_for_update()
    ).all()
    found = {row.id: row for row in rows}
    refused: dict[int, str] = {}
    changed = 0
    for follow_up_id in sorted(set(ids)):
        row = found.get(follow_up_id)
        problem = _refusal(row, action)
        if problem is not None or row is None:
            refused[follow_up_id] = problem or "no such follow-up"
            continue
        if action == "pause":
            row.paused_at, row.updated_at = now, now
        elif action == "resume":
            row.paused_at, row.updated_at = None, now
        else:
            row.paused_at = None
            row.move_to(FollowUpStatus.CANCELLED, f"cancelled by a person: {why}", now)
        details = {"reason": why} if why else {}
        audit.record(
            session,
            at=now,
            actor=actor,
            action=f"follow_up.{action}",
            entity_type="follow_up",
            entity_id=row.id,
            **details,
        )
        changed += 1
    return changed, refused


def _refusal(row: FollowUp | None, action: str) -> str | None:
    if row is None:
        return "no such follow-up"
    if row.status not in PENDING:  # not gone, not going
        return f"it is {row.status.value} already"
    if action == "pause" and row.paused_at is not None:
        return "it is paused already"
    if action == "resume" and row.paused_at is None:
        return "it is not paused"
    return None
