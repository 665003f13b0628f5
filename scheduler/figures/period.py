"""The days a figure covers: the business's local days, from the first to the last included."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_DAYS = 366  # a year and a day: longer periods are asked for in parts
EARLIEST, LATEST = date(1970, 1, 1), date(2999, 12, 31)  # no sale is older, nor figure newer


class PeriodError(ValueError):
    """Figures asked for a period (or a cadence) that cannot be read; `field` names the wrong
    part: `from`, `to` or `cadence`."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Period:
    first: date
    last: date
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        """The first day's local midnight, in UTC."""
        return _midnight(self.first, self.tz)

    @property
    def end(self) -> datetime:
        """The local midnight after the last day, in UTC: the period is [start, end)."""
        return _midnight(self.last + timedelta(days=1), self.tz)

    def weeks(self) -> list[tuple[date, datetime]]:
        """Each week (Monday to Sunday) the period touches, cut to the period: its first day,
        and its end in UTC (the next week's start, or the period's end)."""
        weeks = []
        day = self.first
        while day <= self.last:
            following = min(day + timedelta(days=7 - day.weekday()), self.last + timedelta(days=1))
            weeks.append((day, _midnight(following, self.tz)))
            day = following
        return weeks


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def period_from(
    first: str | None, last: str | None, *, tz: ZoneInfo, today: date, default_days: int = 30
) -> Period:
    """The period `first`..`last` (YYYY-MM-DD, both included); a missing end is today, a
    missing start `default_days` before the end. Raises PeriodError naming the wrong field."""
    end = read_day("to", last) if last else today
    begin = read_day("from", first) if first else end - timedelta(days=default_days - 1)
    if begin > end:
        raise PeriodError(f"{begin.isoformat()} is after the last day ({end.isoformat()})", "from")
    if (end - begin).days + 1 > MAX_DAYS:
        raise PeriodError(f"at most {MAX_DAYS} days from the first", "to")
    return Period(begin, end, tz)


def days_between(first: str | None, last: str | None, *, tz: ZoneInfo) -> Period:
    """The days `first`..`last` (YYYY-MM-DD, both included), either end open: for a list, not
    for figures, so no limit to its length. Raises PeriodError naming the wrong field."""
    begin = read_day("from", first) if first else EARLIEST
    end = read_day("to", last) if last else LATEST
    if begin > end:
        raise PeriodError(f"{begin.isoformat()} is after the last day ({end.isoformat()})", "from")
    return Period(begin, end, tz)


def read_day(name: str, text: str) -> date:
    """A day written YYYY-MM-DD, for the field `name`; PeriodError says what is wrong."""
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{text[:40]!r} is not a date (YYYY-MM-DD)", name) from None
    if not EARLIEST <= day <= LATEST:
        raise PeriodError(f"{text} is not between {EARLIEST} and {LATEST}", name)
    return day


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
