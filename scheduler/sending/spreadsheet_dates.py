"""Dates as spreadsheets write them: `27/11/2026`, `27-11-2026 15:30`, `11/27/2026 3:30 PM`.

Whether `05/06/2026` is the 5th of June or the 6th of May depends on who wrote it. A file is
written by one program in one order, so the file itself is asked first: a date that can only
be read one way (`27/11/2026`) settles the order for every other date in it. Only when the
file says nothing does the business's country decide (its usual short date, from CLDR). A date
that stays open to two readings (a file that reads both ways, or a country that writes the
year first) is reported, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from babel import Locale, UnknownLocaleError


class DateOrder(StrEnum):
    DAY_FIRST = "day first"
    MONTH_FIRST = "month first"


_DATE = re.compile(
    r"(?P<a>\d{1,2})(?P<mark>[/.-])(?P<b>\d{1,2})(?P=mark)(?P<year>\d{4}|\d{2})"
    r"(?:(?:\s+|T)(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?"
    r"\s*(?P<half>[ap]\.?\s?m\.?)?)?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Parts:
    first: int
    second: int
    rest: str  # "YYYY" plus the time as ISO text: "2026", "2026T15:30:00"


def _parts(text: str) -> _Parts | None:
    """The two leading numbers of a spreadsheet date, or None when `text` is not one."""
    match = _DATE.fullmatch(text.strip())
    if match is None:
        return None
    year = match["year"] if len(match["year"]) == 4 else f"20{match['year']}"
    rest = year
    if match["hour"] is not None:
        hour = int(match["hour"])
        half = (match["half"] or "").lower()[:1]
        if half and not 1 <= hour <= 12:
            rest += "T99"  # "15:30 PM": fromisoformat refuses it below
        else:
            hour = hour % 12 + (12 if half == "p" else 0) if half else hour
            rest += f"T{hour:02d}:{match['minute']}:{match['second'] or '00'}"
    return _Parts(int(match["a"]), int(match["b"]), rest)


def is_spreadsheet_date(text: str) -> bool:
    return _parts(text) is not None


def _only_reading(parts: _Parts) -> DateOrder | None:
    """The order a date must be written in, when only one reading makes a date."""
    if parts.first > 12 >= parts.second:
        return DateOrder.DAY_FIRST
    if parts.second > 12 >= parts.first:
        return DateOrder.MONTH_FIRST
    return None


def country_order(country: str) -> DateOrder | None:
    """How the country writes a short date (CLDR, through Babel): Peru and Spain day first, the
    United States month first; None where the year comes first (Canada, Japan)."""
    try:
        pattern = Locale.parse(f"und_{country}").date_formats["short"].pattern
    except (UnknownLocaleError, ValueError):
        return None
    positions = {letter: pattern.find(letter) for letter in "ydM"}
    if positions["y"] < min(positions["d"], positions["M"]):
        return None
    return DateOrder.DAY_FIRST if positions["d"] < positions["M"] else DateOrder.MONTH_FIRST


@dataclass(frozen=True)
class FileOrder:
    """The order a file's dates are read in, and why (told to whoever imports it)."""

    order: DateOrder | None
    evidence: str | None = None  # the first date that could only be read this way


def file_order(values: Iterable[str], country: str) -> FileOrder:
    """The order of a file's spreadsheet dates: what its unambiguous dates show, else the
    country's. Dates that show both orders leave it open (None): each reading then needs a
    date that can only be read one way."""
    shown: dict[DateOrder, str] = {}
    for value in values:
        parts = _parts(value)
        only = _only_reading(parts) if parts else None
        if only is not None:
            shown.setdefault(only, value.strip())
            if len(shown) == 2:
                return FileOrder(None)
    if shown:
        ((order, evidence),) = shown.items()
        return FileOrder(order, evidence)
    return FileOrder(country_order(country))


def iso_text(text: str, order: DateOrder | None) -> str:
    """A spreadsheet date as ISO 8601 text (local time, no offset), or ValueError saying why.

    `text` must be a spreadsheet date (see `is_spreadsheet_date`)."""
    parts = _parts(text)
    assert parts is not None
    only = _only_reading(parts)
    if only is None and parts.first != parts.second and order is None:
        year = parts.rest[:4]
        one, other = (
            f"{parts.second:02d}-{parts.first:02d}",
            f"{parts.first:02d}-{parts.second:02d}",
        )
        raise ValueError(
            f"{text.strip()!r} could be read day first or month first: "
            f"write it as {year}-{one} or {year}-{other}"
        )
    order = only or order or DateOrder.DAY_FIRST  # the same number twice reads either way
    day, month = (
        (parts.first, parts.second) if order is DateOrder.DAY_FIRST else (parts.second, parts.first)
    )
    year, _, time = parts.rest.partition("T")
    iso = f"{year}-{month:02d}-{day:02d}" + (f"T{time}" if time else "")
    try:
        datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(
            f"{text.strip()!r} is not a date (such as 27/11/2026 or 27/11/2026 15:30)"
        ) from None
    return iso
