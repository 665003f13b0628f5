"""How long customers waited for a person's first answer, in opening hours: the median and the
90th percentile of a period's cases, and the share answered by the deadline.

The minutes of an answered case are counted by the worker once (`measure`) and kept on the
case with the fingerprint of the opening hours and zone they were counted in: a quarter's
figures are then a count of its cases by their minutes, read by the database. A case answered
since the worker's last look, or counted in hours the owner has since changed, is counted here
as it is read (both give the same minutes).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from math import ceil
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy import update as update_rows
from sqlalchemy.orm import Session

from scheduler.casework.business_hours import opening_fingerprint, opening_times
from scheduler.config import OpeningHours
from scheduler.db import stale_first
from scheduler.models import Case

MEASURE = 1_000  # cases counted per transaction by the worker
MEASURE_SECONDS = 60  # how often the worker counts the cases answered since


@dataclass(frozen=True)
class FirstAnswers:
    minutes: list[int]  # opening-hours minutes to each first answer, smallest first
    on_time: int
    decided: int  # answered, or past the deadline unanswered

    def percentile(self, share: float) -> int | None:
        """Nearest rank: the smallest value that `share` of the answers do not exceed."""
        if not self.minutes:
            return None
        return self.minutes[max(0, ceil(share * len(self.minutes)) - 1)]

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.decided if self.decided else None


def first_answers(
    session: Session, which: ColumnElement[bool], opening: OpeningHours, tz: ZoneInfo
) -> FirstAnswers:
    """The first answers of the cases that meet `which` (answered ones, and any unanswered
    ones it takes in count as decided: past their deadline). One statement, so that a case the
    worker counts meanwhile is read once: those counted in these hours by their minutes, the
    other answered ones one by one, the unanswered counted."""
    answered = Case.first_responded_at.is_not(None)
    counted = and_(
        answered,
        Case.first_answer_minutes.is_not(None),
        Case.minutes_counted_with == opening_fingerprint(opening, tz),
    )
    uncounted = or_(Case.minutes_counted_with.is_(None), ~counted)
    on_time = Case.first_responded_at <= Case.first_response_due_at
    rows = session.execute(
        union_all(
            select(  # first: its columns type the rows (times as UTC)
                null(),
                literal(1),
                case((on_time, 1), else_=0),
                Case.opened_at,
                Case.first_responded_at,
            ).where(which, answered, uncounted),
            select(
                Case.first_answer_minutes,
                func.count(),
                func.count().filter(on_time),
                null(),
                null(),
            )
            .where(which, counted)
            .group_by(Case.first_answer_minutes),
            select(null(), func.count(), literal(0), null(), null()).where(
                which, Case.first_responded_at.is_(None)
            ),
        )
    ).all()
    by_minutes: Counter[int] = Counter()
    spans, on_time_count, decided = [], 0, 0
    for minutes, n, in_time_count, opened, first in rows:
        decided += n
        on_time_count += in_time_count
        if minutes is not None:
            by_minutes[minutes] += n
        elif first is not None:
            spans.append((opened, first))
    for took in opening_times(spans, opening, tz):
        by_minutes[int(took.total_seconds() // 60)] += 1
    return FirstAnswers(sorted(by_minutes.elements()), on_time_count, decided)


def measure(session: Session, opening: OpeningHours, tz: ZoneInfo, *, limit: int = MEASURE) -> int:
    """Count and keep the minutes of up to `limit` answered cases not yet counted in these
    hours; returns how many. The caller commits, and calls again until none is left; two
    workers skip each other's cases, and a case answered again meanwhile (reopened, then
    answered) keeps no minutes of its earlier answer."""
    fingerprint = opening_fingerprint(opening, tz)
    cases = select(Case.id, Case.opened_at, Case.first_responded_at).where(
        Case.first_responded_at.is_not(None)
    )
    stale = stale_first(session, cases, Case.minutes_counted_with, fingerprint, limit=limit)
    answered = [(case_id, opened, first) for case_id, opened, first in stale if first]
    if answered:
        took = opening_times([(opened, first) for _id, opened, first in answered], opening, tz)
        session.connection().execute(
            update_rows(Case)
            .where(Case.id == bindparam("case"), Case.first_responded_at == bindparam("first"))
            .values(first_answer_minutes=bindparam("minutes"), minutes_counted_with=fingerprint),
            [
                {"case": case_id, "first": first, "minutes": int(spent.total_seconds() // 60)}
                for (case_id, _opened, first), spent in zip(answered, took, strict=True)
            ],
        )
    return len(stale)
