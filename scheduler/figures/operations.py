"""What an operator watches, read from the database when `/metrics` is scraped: the same
figures whichever web process answers and wherever the workers run (each worker writes what
it did into its heartbeat). Each read is small: the follow-ups are summed from their tallies,
the backlog counted to a bound, replies and cases through their own indexes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler import heartbeats
from scheduler.casework.notices import past_deadline
from scheduler.lifecycle import CaseStatus, Direction
from scheduler.models import Case, FollowUpTally, Message


@dataclass(frozen=True)
class Operations:
    follow_ups: dict[tuple[str, str], int]  # (status, channel) -> how many
    backlog: int  # due and not sent, counted up to heartbeats.BACKLOG_MOST + 1
    health: heartbeats.Health  # the workers, and the oldest due follow-up
    replies_read: int
    replies_waiting: int  # stored, not yet read by a worker
    cases_open: int
    cases_overdue: int


def read(session: Session, *, now: datetime) -> Operations:
    tallied = session.execute(
        select(FollowUpTally.status, FollowUpTally.channel, func.sum(FollowUpTally.n)).group_by(
            FollowUpTally.status, FollowUpTally.channel
        )
    )
    inbound = Message.direction == Direction.INBOUND
    waiting = session.scalar(select(func.count()).where(inbound, Message.needs_human.is_(None)))
    replies = session.scalar(select(func.count()).where(inbound))
    cases = session.execute(
        select(
            func.count().filter(Case.status == CaseStatus.OPEN),
            func.count().filter(past_deadline(now)),
        )
    ).one()
    return Operations(
        follow_ups={(status, channel): int(n) for status, channel, n in tallied if n},
        backlog=heartbeats.backlog(session, now=now),
        health=heartbeats.health(session, now=now),
        replies_read=(replies or 0) - (waiting or 0),
        replies_waiting=waiting or 0,
        cases_open=int(cases[0]),
        cases_overdue=int(cases[1]),
    )
