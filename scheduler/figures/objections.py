"""Whether follow-ups were objected to (`FollowUp.objected`, migration 0043), written by the
worker on PostgreSQL. There the triggers only note the follow-ups an objection or a case's
status touched (`objected_rechecks`): writing them would lock follow-ups inside
transactions that lock cases too, in whatever order each comes (a batch of replies, an
email stored, a case resolved), and they would deadlock. The worker reads each noted
follow-up again within seconds, taking only a follow-up and cases no other transaction
holds, so that it never waits either: one held is left, noted, for the next look. SQLite
writes one transaction at a time: its triggers write `objected` at once and note nothing."""

from __future__ import annotations

from threading import Event

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.lifecycle import Direction
from scheduler.listening.classify import Label
from scheduler.models import Case, FollowUp, Message, ObjectedRecheck

RECHECK_SECONDS = 5  # how often the worker looks, as often as it reads replies
RECHECK_MOST = 1_000  # follow-ups read at one look


def recheck(sessions: sessionmaker[Session], stop: Event | None = None) -> int:
    """Every noted follow-up read again, each in a transaction of its own; returns how many
    were (those another transaction held stay noted)."""
    with sessions() as session:
        noted = noted_follow_ups(session)
    read = 0
    for follow_up in noted:
        if stop is not None and stop.is_set():
            break
        with sessions.begin() as session:
            read += read_again(session, follow_up)
    return read


def noted_follow_ups(session: Session) -> list[int]:
    return list(
        session.scalars(
            select(ObjectedRecheck.follow_up_id)
            .distinct()
            .order_by(ObjectedRecheck.follow_up_id)
            .limit(RECHECK_MOST)
        )
    )


def read_again(session: Session, follow_up: int) -> bool:
    """Write the follow-up's `objected` from its objections and their cases now, and delete
    its notes; False, writing nothing, when another transaction holds the follow-up or one of
    those cases. It holds them until its transaction ends (the cases shared: their status
    cannot change meanwhile), so no note of it can be written in between."""
    if _held(session, follow_up):
        return False
    session.execute(delete(ObjectedRecheck).where(ObjectedRecheck.follow_up_id == follow_up))
    now_said = func.follow_up_objected(FollowUp.id)  # the migration's function
    session.execute(
        update(FollowUp)
        .where(FollowUp.id == follow_up, FollowUp.objected.is_distinct_from(now_said))
        .values(objected=now_said)
        .execution_options(synchronize_session=False)
    )
    return True


def _held(session: Session, follow_up: int) -> bool:
    """Lock the follow-up and its objections' cases, skipping any another transaction holds;
    whether one was. A follow-up gone is not held: its notes go."""
    locked = session.scalar(  # FOR NO KEY UPDATE SKIP LOCKED
        select(FollowUp.id)
        .where(FollowUp.id == follow_up)
        .with_for_update(key_share=True, skip_locked=True)
    )
    if locked is None:
        return session.scalar(select(FollowUp.id).where(FollowUp.id == follow_up)) is not None
    cases = select(Message.case_id).where(
        Message.follow_up_id == follow_up,
        Message.direction == Direction.INBOUND,
        Message.label == Label.OBJECTION.value,
    )
    wanted = session.scalar(select(func.count(Case.id)).where(Case.id.in_(cases))) or 0
    taken = session.scalars(  # FOR SHARE SKIP LOCKED
        select(Case.id).where(Case.id.in_(cases)).with_for_update(read=True, skip_locked=True)
    ).all()
    return len(taken) < wanted
