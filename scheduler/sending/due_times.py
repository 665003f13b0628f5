"""From a sale to dated follow-ups: pure functions over values, no database, no clock.

A step's due time is its anchor (the sale, the renewal date, or the moment a score arrived) plus
its offset, then moved forward into the send window on a send day, in the customer's own time
zone. Wall-clock arithmetic is done in local time and converted once, so DST changes move nothing
outside the window.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from scheduler.config import WEEKDAYS, TimeWindow
from scheduler.lifecycle import Anchor, Channel, FollowUpStatus

DEFAULT_GRACE = timedelta(days=2)


@dataclass(frozen=True)
class Condition:
    """`score >= 9`: the only facts a condition may test are the ones listed in FACTS."""

    fact: str
    operator: str
    value: int

    def __str__(self) -> str:
        return f"{self.fact} {self.operator} {self.value}"

    def holds(self, facts: dict[str, int]) -> bool:
        return self.fact in facts and _OPERATORS[self.operator](facts[self.fact], self.value)


_OPERATORS = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}
FACTS = ("score",)
_CONDITION = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|==|>|<)\s*(\d{1,2})\s*$")


def parse_condition(text: str) -> Condition:
    """Parse `score >= 9`; anything else is refused with the reason, for the admin to show."""
    match = _CONDITION.match(text)
    if not match:
        raise ValueError(f"condition {text!r}: expected something like 'score >= 9'")
    fact, operator, value = match.group(1), match.group(2), int(match.group(3))
    if fact not in FACTS:
        raise ValueError(f"condition {text!r}: unknown fact {fact!r} (known: {', '.join(FACTS)})")
    if not 0 <= value <= 10:
        raise ValueError(f"condition {text!r}: a score goes from 0 to 10")
    return Condition(fact, operator, value)


@dataclass(frozen=True)
class SendRules:
    """When a customer may be contacted: their time zone, the daily window, the days."""

    tz: ZoneInfo
    window: TimeWindow
    days: tuple[str, ...]


@dataclass(frozen=True)
class Step:
    id: int
    key: str
    anchor: Anchor
    offset: timedelta
    channel: Channel
    condition: Condition | None = None


@dataclass(frozen=True)
class Planned:
    """One follow-up to create: scheduled at `due_at`, or skipped with the reason."""

    step_id: int
    channel: Channel
    due_at: datetime
    status: FollowUpStatus
    reason: str | None = None


def fit_to_window(at: datetime, rules: SendRules) -> datetime:
    """The first moment at or after `at` that is inside the window on a send day (UTC).

    Comparisons are made on UTC instants: Python compares two datetimes of the same zone by wall
    clock, which is wrong in the repeated hour of a DST change.
    """
    local = at.astimezone(rules.tz)
    for days_ahead in range(8):
        day = local.date() + timedelta(days=days_ahead)
        if WEEKDAYS[day.weekday()] not in rules.days:
            continue
        start, end = _window_on(day, rules.tz, rules.window.start, rules.window.end)
        if at < start:
            return start  # a start inside a DST gap lands just after the gap
        if at < end:
            return at.astimezone(UTC)
    raise ValueError("no send day in the week")  # unreachable: send_days is never empty


@lru_cache(maxsize=4096)
def _window_on(day: date, tz: ZoneInfo, start: time, end: time) -> tuple[datetime, datetime]:
    """When the window opens and closes on `day` in `tz` (UTC): the same for every follow-up
    due that day there, so worked out once (a batch of sales plans thousands)."""
    return (
        datetime.combine(day, start, tzinfo=tz).astimezone(UTC),
        datetime.combine(day, end, tzinfo=tz).astimezone(UTC),
    )


def window_closes(at: datetime, rules: SendRules) -> datetime:
    """When the send window that `at` is in closes (UTC): a send queued earlier must not leave
    after it, however long it waited for the rate limit."""
    local = at.astimezone(rules.tz)
    return datetime.combine(local.date(), rules.window.end, tzinfo=rules.tz).astimezone(UTC)


def anchor_offset(step: Step, renewal_days: int | None) -> timedelta | None:
    """How far after the sale a step's clock starts, or None when it does not apply at planning."""
    if step.anchor is Anchor.SALE:
        return timedelta(0)
    if step.anchor is Anchor.RENEWAL and renewal_days:
        return timedelta(days=renewal_days)
    return None  # score steps wait for a score; renewal steps need a renewing product


def _span(span: timedelta) -> str:
    return f"{span.days} d {span.seconds // 3600} h"


def plan_step(
    step: Step, anchor: datetime, rules: SendRules, now: datetime, grace: timedelta
) -> Planned:
    """Date one step from its anchor; a step overdue by more than `grace` is skipped, not late.

    The offset is added to the local wall clock (aware arithmetic within one zone), so "7 days
    after a 19:30 sale" is 19:30 a week later even when a DST change falls in between.
    """
    due = (anchor.astimezone(rules.tz) + step.offset).astimezone(UTC)
    if now - due > grace:
        return Planned(
            step.id,
            step.channel,
            due,
            FollowUpStatus.SKIPPED,
            f"overdue by {_span(now - due)} when planned (grace {_span(grace)})",
        )
    return Planned(
        step.id, step.channel, fit_to_window(max(due, now), rules), FollowUpStatus.SCHEDULED
    )


def plan_sale(
    steps: Sequence[Step],
    *,
    sold_at: datetime,
    renewal_days: int | None,
    rules: SendRules,
    now: datetime,
    grace: timedelta = DEFAULT_GRACE,
) -> list[Planned]:
    """The follow-ups a sale gets when it is recorded (score steps come later, with a score)."""
    planned = []
    local_sale = sold_at.astimezone(rules.tz)
    for step in steps:
        offset = anchor_offset(step, renewal_days)
        if offset is not None:
            planned.append(plan_step(step, local_sale + offset, rules, now, grace))
    return planned


def plan_after_score(
    steps: Sequence[Step],
    *,
    score: int,
    at: datetime,
    rules: SendRules,
    now: datetime,
    grace: timedelta = DEFAULT_GRACE,
) -> list[Planned]:
    """The score steps whose condition a new score meets, dated from when the score arrived."""
    return [
        plan_step(step, at, rules, now, grace)
        for step in steps
        if step.anchor is Anchor.SCORE and step.condition and step.condition.holds({"score": score})
    ]
