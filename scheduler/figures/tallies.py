"""Follow-ups counted by day without reading them one by one: a period's whole UTC days are
summed from `follow_up_tallies` (kept by the database's triggers, see migration 0022) and only
the hours at either end, where the business's midnight is not UTC's, are counted from the
follow-ups themselves. A quarter of a busy shop is then ninety rows per step and status, not a
quarter of a million follow-ups. One product's too: the tallies know each follow-up's
product (the database moves a sale's follow-ups with it when it changes product).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Any, Literal

from sqlalchemy import Select, and_, delete, func, insert, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from scheduler.figures.period import Period
from scheduler.figures.scope import Scope, of_scope
from scheduler.models import CadenceStep, FollowUp, FollowUpTally

When = Literal["due", "sent"]
KEY = ("due_day", "sent_day", "step_id", "channel", "status", "replied", "product_id", "objected")
IN_TIME = "in_time"  # FollowUp.replied: a reply came within 7 days of the sending
NO_REPLY = "none"  # the tallies' `replied` of a follow-up nobody answered (null on the row)
RESOLVED = "resolved"  # FollowUp.objected: an objection to it is in a resolved case
NOT_OBJECTED = "none"  # the tallies' `objected` of a follow-up nobody objected to
NULLS = {"replied": NO_REPLY, "objected": NOT_OBJECTED}  # what the tallies keep for null
FOLD_SECONDS = 600  # how often the worker folds the rows written since
FOLDING = (1_400_022, 1)  # the advisory lock of the one who folds (two keys: ours alone)


@dataclass(frozen=True)
class Split:
    """A period cut at UTC midnights: its whole UTC days [first, end) and the stretches of
    time at either end outside them. With no whole day, the one stretch is the period."""

    first: date
    end: date
    edges: tuple[tuple[datetime, datetime], ...]


def split(period: Period) -> Split:
    start, end = period.start.astimezone(UTC), period.end.astimezone(UTC)
    first = start.date() if start.time() == time(0) else start.date() + timedelta(days=1)
    last = end.date()
    if first >= last:
        return Split(first, first, ((start, end),))
    first_at = datetime.combine(first, time(0), tzinfo=UTC)
    last_at = datetime.combine(last, time(0), tzinfo=UTC)
    edges = tuple((a, b) for a, b in ((start, first_at), (last_at, end)) if a < b)
    return Split(first, last, edges)


def _live(name: str) -> Any:
    """A follow-up's column as the tallies keep it."""
    column = getattr(FollowUp, name)
    return func.coalesce(column, NULLS[name]).label(name) if name in NULLS else column


def _plain(value: Any) -> Hashable:
    """A key as both sides give it: the follow-ups' enums as the tallies' strings."""
    return str(value) if isinstance(value, Enum) else value


def counted(
    session: Session,
    period: Period,
    scope: Scope,
    *,
    when: When,
    by: Sequence[str],
    statuses: Collection[str] | None = None,
) -> Counter[tuple[Hashable, ...]]:
    """How many follow-ups were due (or sent) in the period, of the scope, by the columns
    named in `by` (step_id, channel, status, replied, objected), only those of `statuses` if
    given. The edges and the whole days in one statement: on PostgreSQL two would read two
    moments, and a follow-up moved meanwhile from one to the other would count twice, or not
    at all."""
    days = split(period)
    moment = FollowUp.due_at if when == "due" else FollowUp.sent_at
    parts = []
    if days.edges:
        one_by_one = select(*(_live(name) for name in by), func.count()).where(
            or_(*(and_(moment >= a, moment < b) for a, b in days.edges))
        )
        if statuses is not None:
            one_by_one = one_by_one.where(FollowUp.status.in_(statuses))
        parts.append(of_scope(one_by_one, scope).group_by(*by))
    if days.first < days.end:
        day = FollowUpTally.due_day if when == "due" else FollowUpTally.sent_day
        columns = [getattr(FollowUpTally, name) for name in by]
        tallied = select(*columns, func.sum(FollowUpTally.n)).where(
            day >= days.first, day < days.end
        )
        if statuses is not None:
            tallied = tallied.where(FollowUpTally.status.in_([str(s) for s in statuses]))
        if scope.cadence_id is not None:
            steps = select(CadenceStep.id).where(CadenceStep.cadence_id == scope.cadence_id)
            tallied = tallied.where(FollowUpTally.step_id.in_(steps))
        if scope.product_id is not None:
            tallied = tallied.where(FollowUpTally.product_id == scope.product_id)
        parts.append(tallied.group_by(*columns))
    found: Counter[tuple[Hashable, ...]] = Counter()
    for *key, count in session.execute(union_all(*parts)):
        found[tuple(map(_plain, key))] += int(count)
    return Counter({key: count for key, count in found.items() if count})  # a negative shows


def tallied_now(statuses: Collection[str]) -> Select[int]:
    """How many follow-ups are in these statuses now, whenever due: a sum over the tallies,
    not a count of the follow-ups (a busy shop has a few hundred thousand scheduled)."""
    return select(func.coalesce(func.sum(FollowUpTally.n), 0)).where(
        FollowUpTally.status.in_([str(status) for status in statuses])
    )


def compact(session: Session) -> int:
    """Fold each key's rows into one, and drop those that sum to nothing; returns how many
    keys were folded. The rows are deleted and their sum written from what the deletion
    returned: a row another writer adds meanwhile is not deleted, so nothing is lost or
    counted twice. On PostgreSQL one folder at a time (the workers of several machines each
    run it): two deleting the same rows in different orders could deadlock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(*FOLDING)))
    columns = [getattr(FollowUpTally, name) for name in KEY]
    folded = (
        select(*columns)
        .group_by(*columns)
        .having(or_(func.count() > 1, func.sum(FollowUpTally.n) == 0))
        .subquery()
    )
    row = aliased(FollowUpTally)
    doomed = select(row.id).join(  # `=` where it can (a hash join): sent_day may be null
        folded,
        and_(
            row.sent_day.is_not_distinct_from(folded.c.sent_day),
            *(getattr(row, name) == folded.c[name] for name in KEY if name != "sent_day"),
        ),
    )
    gone = session.execute(
        delete(FollowUpTally)
        .where(FollowUpTally.id.in_(doomed))
        .returning(*columns, FollowUpTally.n)
    ).all()
    sums: defaultdict[tuple[Any, ...], int] = defaultdict(int)
    for *key, n in gone:
        sums[tuple(key)] += n
    kept = [dict(zip(KEY, key, strict=True)) | {"n": n} for key, n in sums.items() if n]
    if kept:
        session.execute(insert(FollowUpTally), kept)
    return len(sums)
