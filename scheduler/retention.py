"""Keeping words no longer than needed (`[privacy] retention_months`): message bodies older
than that, and the words of cases closed that long ago, are erased as an erasure erases them
(`scheduler.erasure.ERASED`), by the worker every hour, a batch at a time. What the shop counts
stays: that the message went, was answered, was rated; when the case opened and closed.

Open cases are never touched, whatever their age: someone is still working on them, and the
conversation is what they work from.
"""

from __future__ import annotations

import calendar
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler import audit
from scheduler.erasure import COPY_WITHOUT_WORDS, ERASED, MESSAGE_WITHOUT_WORDS
from scheduler.lifecycle import PENDING, UNFINISHED, CaseStatus, FollowUpStatus
from scheduler.models import Case, CaseNote, FollowUp, Message, OutboxEntry, Remedy

UNDECIDED = (*PENDING, FollowUpStatus.SENDING, FollowUpStatus.UNKNOWN)
BATCH = 2_000  # rows changed per transaction: a long sweep never holds locks for long
RETENTION_SECONDS = 3600  # how often the worker sweeps


@dataclass(frozen=True)
class Swept:
    messages: int  # message bodies erased (or, in a dry run, that would be)
    outbox: int
    cases: int  # closed cases whose words were erased
    before: datetime  # what was older than this

    def __bool__(self) -> bool:
        return bool(self.messages or self.outbox or self.cases)


def cutoff(now: datetime, months: int) -> datetime:
    """The same moment `months` calendar months earlier (the 31st of a shorter month: its last
    day)."""
    years, month = divmod(now.month - 1 - months, 12)
    year = now.year + years
    return now.replace(
        year=year, month=month + 1, day=min(now.day, calendar.monthrange(year, month + 1)[1])
    )


def _old_messages(before: datetime) -> ColumnElement[bool]:
    """Old, and done with: not in an open case, not still to go (or to be looked up: a
    look-up compares the words), nor a follow-up's whose fate is still open (held while a
    case lasts, it goes out with these very words)."""
    open_case = select(Case.id).where(Case.status == CaseStatus.OPEN)
    undecided = select(FollowUp.id).where(FollowUp.status.in_(UNDECIDED))
    return and_(
        Message.created_at < before,
        Message.body != ERASED,
        or_(Message.case_id.is_(None), Message.case_id.not_in(open_case)),
        Message.status.not_in(UNFINISHED),
        or_(Message.follow_up_id.is_(None), Message.follow_up_id.not_in(undecided)),
    )


def _old_cases(before: datetime) -> ColumnElement[bool]:
    return and_(
        Case.status == CaseStatus.RESOLVED,
        Case.resolved_at < before,
        or_(Case.outcome.is_(None), Case.outcome != ERASED),
    )


def _old_outbox(before: datetime) -> ColumnElement[bool]:
    return and_(OutboxEntry.created_at < before, OutboxEntry.body != ERASED)


def count(session: Session, *, months: int, now: datetime) -> Swept:
    """What a sweep would erase now (the dry run)."""
    before = cutoff(now, months)

    def how_many(where: ColumnElement[bool], model: type) -> int:
        return session.scalar(select(func.count()).select_from(model).where(where)) or 0

    return Swept(
        how_many(_old_messages(before), Message),
        how_many(_old_outbox(before), OutboxEntry),
        how_many(_old_cases(before), Case),
        before,
    )


def sweep(session: Session, *, months: int, now: datetime, actor: str) -> Swept:
    """Erase one batch of each kind older than `months`; the caller commits, and calls again
    while something was erased."""
    before = cutoff(now, months)
    messages = session.scalars(
        select(Message.id).where(_old_messages(before)).order_by(Message.id).limit(BATCH)
    ).all()
    if messages:
        session.execute(
            update(Message)
            .where(Message.id.in_(messages))
            .values(**MESSAGE_WITHOUT_WORDS, error_message=None),
            execution_options={"synchronize_session": False},
        )
    outbox = session.scalars(
        select(OutboxEntry.id).where(_old_outbox(before)).order_by(OutboxEntry.id).limit(BATCH)
    ).all()
    if outbox:
        session.execute(
            update(OutboxEntry).where(OutboxEntry.id.in_(outbox)).values(**COPY_WITHOUT_WORDS),
            execution_options={"synchronize_session": False},
        )
    cases = session.scalars(
        select(Case.id).where(_old_cases(before)).order_by(Case.id).limit(BATCH)
    ).all()
    if cases:
        for statement in (
            update(Case).where(Case.id.in_(cases)).values(outcome=ERASED),
            update(CaseNote).where(CaseNote.case_id.in_(cases)).values(body=ERASED),
            update(Remedy).where(Remedy.case_id.in_(cases)).values(description=ERASED),
        ):
            session.execute(statement, execution_options={"synchronize_session": False})
    swept = Swept(len(messages), len(outbox), len(cases), before)
    if swept:
        audit.record(
            session,
            at=now,
            actor=actor,
            action="retention.sweep",
            entity_type="retention",
            months=months,
            before=before.isoformat(),
            messages=swept.messages,
            outbox=swept.outbox,
            cases=swept.cases,
        )
    return swept


def sweep_all(
    sessions: sessionmaker[Session],
    *,
    months: int,
    now: datetime,
    actor: str,
    stop: threading.Event | None = None,
) -> Swept:
    """Sweep a batch per transaction until nothing is left (or `stop` is set); the total."""
    total = Swept(0, 0, 0, cutoff(now, months))
    while stop is None or not stop.is_set():
        with sessions.begin() as session:
            swept = sweep(session, months=months, now=now, actor=actor)
        total = Swept(
            total.messages + swept.messages,
            total.outbox + swept.outbox,
            total.cases + swept.cases,
            total.before,
        )
        if not swept:
            break
    return total
