"""Deadlines counted in opening hours: four hours from Friday 17:00 is Monday 12:00, not 21:00.

Opening windows are local wall-clock times in the business's time zone, taken day by day, so a
DST change shortens or lengthens that day's window as it really does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from scheduler.config import WEEKDAYS, OpeningHours, TimeWindow

MAX_DAYS = 366  # opening hours always have one open day a week: this is never reached
COUNTING = 1  # how `opening_times` counts: a change to it makes every fingerprint new


@lru_cache(maxsize=4096)
def _open_between(day: date, window: TimeWindow, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """When the window opens and closes on that local day, in UTC. Cached: the dashboard
    measures thousands of cases over the same few months of days."""
    opens = datetime.combine(day, window.start, tzinfo=tz).astimezone(UTC)
    return opens, datetime.combine(day, window.end, tzinfo=tz).astimezone(UTC)


def add_opening_hours(
    start: datetime, hours: float, opening: OpeningHours, tz: ZoneInfo
) -> datetime:
    """The moment (UTC) when `hours` of opening time have passed since `start`."""
    remaining = timedelta(hours=hours)
    start = start.astimezone(UTC)
    day = start.astimezone(tz).date()
    for _ in range(MAX_DAYS):
        window = opening.get(WEEKDAYS[day.weekday()])
        if window is not None:
            opens, closes = _open_between(day, window, tz)
            begin = max(opens, start)
            if begin < closes:
                if remaining <= closes - begin:
                    return begin + remaining
                remaining -= closes - begin
        day += timedelta(days=1)
    raise ValueError("no opening hours in a year")


def opening_times(
    spans: Sequence[tuple[datetime, datetime]], opening: OpeningHours, tz: ZoneInfo
) -> list[timedelta]:
    """How much opening time lies within each (start, end): an answer given on Monday at 10:00
    to a complaint of Friday 17:30 took an hour of a shop open 9-18, not 64 hours; none when
    the end comes first. Each local day's window is looked up once for all the spans, and a
    span's time is the difference of two running totals of opening time (the dashboard
    measures thousands of cases over the same few months)."""
    if not spans:
        return []
    days = [(start.astimezone(tz).date(), end.astimezone(tz).date()) for start, end in spans]
    first = min(min(pair) for pair in days)  # an end may come before its start
    last = max(max(pair) for pair in days)
    windows: dict[date, tuple[datetime, timedelta, timedelta]] = {}  # opens, length, before
    before, day = timedelta(0), first
    while day <= last:
        window = opening.get(WEEKDAYS[day.weekday()])
        if window is None:
            windows[day] = (datetime.min.replace(tzinfo=UTC), timedelta(0), before)
        else:
            opens, closes = _open_between(day, window, tz)
            windows[day] = (opens, closes - opens, before)
            before += closes - opens
        day += timedelta(days=1)

    def running(moment: datetime, day: date) -> timedelta:
        """Opening time from the first day's start to `moment`."""
        opens, length, before = windows[day]
        return before + min(max(moment - opens, timedelta(0)), length)

    return [
        max(timedelta(0), running(end, end_day) - running(start, start_day))
        for (start, end), (start_day, end_day) in zip(spans, days, strict=True)
    ]


def opening_fingerprint(opening: OpeningHours, tz: ZoneInfo) -> str:
    """What opening-hours minutes kept on a case were counted in (`Case.minutes_counted_with`):
    the same for the same hours in the same zone, whatever the order of their days."""
    days = " ".join(f"{day}={opening[day]}" for day in WEEKDAYS if day in opening)
    return hashlib.sha256(f"{COUNTING}\n{tz.key}\n{days}".encode()).hexdigest()[:16]
