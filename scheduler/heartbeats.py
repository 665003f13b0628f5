"""Whether the workers are sending: each worker process writes its heartbeat; the admin, the
metrics and `/healthz?deep=1` read them with the backlog of due follow-ups.

A shop notices a stopped worker only when a customer complains that nobody followed up; the
owner should know first. Two signs, either of which is enough: no worker has finished a
dispatch pass (or is in one, and alive) for two of its ticks, or a follow-up has been due for
more than five minutes without being sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from scheduler.models import FollowUp, WorkerHeartbeat
from scheduler.paging import count_up_to
from scheduler.sending.leases import due_now

TICKS = 2  # a worker that has not passed for this many of its ticks is late
LONGEST_WAIT = timedelta(minutes=5)  # a due follow-up waiting longer: nobody is sending
FORGET_AFTER = timedelta(days=7)  # a worker not heard of for this long leaves the list
BACKLOG_MOST = 1_000_000  # the backlog is counted no further


# --- what a worker writes, each in its own short transaction ------------------------------------


def started(session: Session, worker_id: str, *, tick_seconds: int, now: datetime) -> None:
    """A worker process starts; workers not heard of for a week are forgotten."""
    session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - FORGET_AFTER))
    session.add(
        WorkerHeartbeat(worker_id=worker_id, tick_seconds=tick_seconds, started_at=now, beat_at=now)
    )


def _write(session: Session, worker_id: str, **values: object) -> None:
    session.execute(
        update(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker_id).values(**values)
    )


def alive(session: Session, worker_id: str, *, now: datetime) -> None:
    _write(session, worker_id, beat_at=now)


def pass_began(session: Session, worker_id: str, *, now: datetime) -> None:
    _write(session, worker_id, beat_at=now, pass_started_at=now)


def pass_ended(
    session: Session,
    worker_id: str,
    *,
    now: datetime,
    seconds: float,
    sent: int,
    sends: Mapping[str, int] | None = None,
) -> None:
    """A dispatch pass finished; `sends`: every result since the worker started, by
    "channel/outcome"."""
    _write(
        session,
        worker_id,
        beat_at=now,
        pass_started_at=None,
        last_pass_at=now,
        last_pass_seconds=seconds,
        last_pass_sent=sent,
        passes=WorkerHeartbeat.passes + 1,
        pass_seconds_total=WorkerHeartbeat.pass_seconds_total + seconds,
        **({"sends": dict(sends)} if sends is not None else {}),
    )


def stopped(session: Session, worker_id: str, *, now: datetime) -> None:
    _write(session, worker_id, beat_at=now, pass_started_at=None, stopped_at=now)


# --- what the admin and the health check read -----------------------------------------------------


@dataclass(frozen=True)
class WorkerState:
    worker_id: str
    tick_seconds: int
    started_at: datetime
    beat_at: datetime
    last_pass_at: datetime | None
    last_pass_seconds: float | None
    last_pass_sent: int
    in_pass_since: datetime | None
    stopped_at: datetime | None
    passing: bool  # finished a pass within two ticks, or is in one and alive
    passes: int
    pass_seconds_total: float
    sends: Mapping[str, int]  # since it started, by "channel/outcome"


def _passing(row: WorkerHeartbeat, now: datetime) -> bool:
    if row.stopped_at is not None:
        return False
    since = now - TICKS * timedelta(seconds=row.tick_seconds)
    if row.last_pass_at is not None and row.last_pass_at >= since:
        return True
    return row.pass_started_at is not None and row.beat_at >= since


def workers(session: Session, *, now: datetime) -> list[WorkerState]:
    """The workers heard of this week, the most recently alive first."""
    rows = session.scalars(
        select(WorkerHeartbeat)
        .where(WorkerHeartbeat.beat_at >= now - FORGET_AFTER)
        .order_by(WorkerHeartbeat.beat_at.desc(), WorkerHeartbeat.worker_id)
    )
    return [
        WorkerState(
            worker_id=row.worker_id,
            tick_seconds=row.tick_seconds,
            started_at=row.started_at,
            beat_at=row.beat_at,
            last_pass_at=row.last_pass_at,
            last_pass_seconds=row.last_pass_seconds,
            last_pass_sent=row.last_pass_sent,
            in_pass_since=row.pass_started_at,
            stopped_at=row.stopped_at,
            passing=_passing(row, now),
            passes=row.passes,
            pass_seconds_total=row.pass_seconds_total,
            sends=row.sends,
        )
        for row in rows
    ]


def oldest_due(session: Session, *, now: datetime) -> datetime | None:
    """When the follow-up that has waited longest became due (one index read)."""
    return session.scalar(select(func.min(FollowUp.due_at)).where(due_now(now)))


def backlog(session: Session, *, now: datetime) -> int:
    """How many follow-ups are due and not sent, counted up to BACKLOG_MOST + 1."""
    return count_up_to(session, select(FollowUp.id).where(due_now(now)), BACKLOG_MOST)


@dataclass(frozen=True)
class Health:
    """The two signs that nobody is sending, as facts: the page and the check word them."""

    workers: list[WorkerState]  # those heard of this week, the most recently alive first
    oldest_due_at: datetime | None
    now: datetime

    @property
    def last_pass_at(self) -> datetime | None:
        """The latest pass any worker finished (None: never)."""
        passes = [state.last_pass_at for state in self.workers if state.last_pass_at]
        return max(passes, default=None)

    @property
    def workers_passing(self) -> int:
        return sum(state.passing for state in self.workers)

    @property
    def workers_late(self) -> bool:
        return self.workers_passing == 0

    @property
    def oldest_wait(self) -> timedelta | None:
        return None if self.oldest_due_at is None else self.now - self.oldest_due_at

    @property
    def backlog_late(self) -> bool:
        wait = self.oldest_wait
        return wait is not None and wait > LONGEST_WAIT

    @property
    def ok(self) -> bool:
        return not (self.workers_late or self.backlog_late)


def health(session: Session, *, now: datetime) -> Health:
    """Cheap enough for every page an owner opens: a few rows, and one index read."""
    return Health(workers(session, now=now), oldest_due(session, now=now), now)
