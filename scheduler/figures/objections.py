"""Whether follow-ups were objected to (`FollowUp.objected`, migration 0043), written by the
worker on PostgreSQL. There the triggers only note the follow-ups an objection or a case's
status touched (`objected_rechecks`): writing them would lock follow-ups inside
transactions that lock cases too, in whatever order each comes (a batch of replies, an
email stored, a case resolved), and they would deadlock. The worker reads each noted
follow-up again within seconds, taking only a follow-up and cases no other transaction
holds, so that it never waits for a row either (for a table held whole, by a TRUNCATE, at
most TABLE_WAIT): one held is left, noted, for the next look. `postventa dispatch --once`
does the same after its pass. SQLite writes one transaction at a time: its triggers write
`objected` at once and note nothing."""

from __future__ import annotations

from threading import Event

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from scheduler.db import wait_for_locks
from scheduler.lifecycle import Direction
from scheduler.listening.classify import Label
from scheduler.models import Case, FollowUp, Message, ObjectedRecheck

RECHECK_SECONDS = 5  # how often the worker looks, as often as it reads replies
RECHECK_MOST = 1_000  # follow-ups read at one look
LOCK_NOT_AVAILABLE = "55P03"  # a row's NOWAIT, or a table's lock past the timeout
TABLE_WAIT = 2.0  # seconds for a table another holds whole (TRUNCATE, a migration's lock)


def recheck(sessions: sessionmaker[Session], stop: Event | None = None) -> int:
    """Every noted follow-up read again, each in a transaction of its own; returns how many
    were (those another transaction held stay noted). None on SQLite, whose triggers write
    `objected` themselves."""
    with sessions() as session:
        if session.get_bind().dialect.name != "postgresql":
            return 0
        noted = noted_follow_ups(session)
    read = 0
    for follow_up in noted:
        if stop is not None and stop.is_set():
            break
        with sessions.begin() as session:
            wait_for_locks(session, TABLE_WAIT)
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
    its notes; False, changing nothing, when another transaction holds the follow-up or one
    of those cases (or a table, past the transaction's lock timeout). In this order: the
    follow-up locked; its notes deleted (each one's change committed before, or it would not
    be seen); the cases of its objections locked, shared, as they are now (those of a change
    committed after the deletion, too, whose note stays); then read and written. A case whose
    status someone is changing is held: the notes come back, for the next look."""
    attempt = session.begin_nested()
    try:
        found = session.scalar(  # FOR NO KEY UPDATE NOWAIT
            select(FollowUp.id)
            .where(FollowUp.id == follow_up)
            .with_for_update(key_share=True, nowait=True)
        )
        session.execute(delete(ObjectedRecheck).where(ObjectedRecheck.follow_up_id == follow_up))
        session.execute(  # FOR SHARE NOWAIT: their status cannot change until this ends
            select(Case.id)
            .where(Case.id.in_(_cases_of(follow_up)))
            .order_by(Case.id)
            .with_for_update(read=True, nowait=True)
        ).all()
        if found is not None:  # a follow-up gone: its notes go, nothing to write
            now_said = func.follow_up_objected(FollowUp.id)  # the migration's function
            session.execute(
                update(FollowUp)
                .where(FollowUp.id == follow_up, FollowUp.objected.is_distinct_from(now_said))
                .values(objected=now_said)
                .execution_options(synchronize_session=False)
            )
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        attempt.rollback()
        return False
    attempt.commit()
    return True


def _cases_of(follow_up: int) -> Select[int | None]:
    return select(Message.case_id).where(
        Message.follow_up_id == follow_up,
        Message.direction == Direction.INBOUND,
        Message.label == Label.OBJECTION.value,
    )
