"""Whether follow-ups were objected to (`FollowUp.objected`, migration 0043), written by the
worker where a case's trigger could not: on PostgreSQL a case resolved or reopened writes its
objections' follow-ups that no other transaction holds, and notes the others in
`objected_rechecks` rather than wait for them (it could deadlock with a batch of replies,
which locks a follow-up before the customer's case). Each noted follow-up is written in a
transaction of its own, holding nothing else while it waits for the row. SQLite writes one
transaction at a time: its triggers never leave any."""

from __future__ import annotations

from threading import Event

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.models import FollowUp, ObjectedRecheck

RECHECK_SECONDS = 10  # how often the worker looks (an empty table, mostly)
RECHECK_MOST = 1_000  # follow-ups written at one look


def recheck(sessions: sessionmaker[Session], stop: Event | None = None) -> int:
    """Write the noted follow-ups' `objected` from their objections and cases now; returns
    how many were written. Each one's notes are deleted once its row is locked, then it is
    read: whatever a deleted note's transaction changed was committed before the deletion,
    so the read sees it; a note committed after it stays for the next look."""
    with sessions() as session:
        noted = session.scalars(
            select(ObjectedRecheck.follow_up_id)
            .distinct()
            .order_by(ObjectedRecheck.follow_up_id)
            .limit(RECHECK_MOST)
        ).all()
    written = 0
    for follow_up in noted:
        if stop is not None and stop.is_set():
            break
        with sessions.begin() as session:
            session.execute(  # FOR NO KEY UPDATE, as the triggers lock it
                select(FollowUp.id).where(FollowUp.id == follow_up).with_for_update(key_share=True)
            )
            session.execute(
                delete(ObjectedRecheck).where(ObjectedRecheck.follow_up_id == follow_up)
            )
            now_said = func.follow_up_objected(FollowUp.id)  # the migration's function
            session.execute(
                update(FollowUp)
                .where(FollowUp.id == follow_up, FollowUp.objected.is_distinct_from(now_said))
                .values(objected=now_said)
                .execution_options(synchronize_session=False)
            )
        written += 1
    return written
