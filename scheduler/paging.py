"""Pages of a long list cut by keyset: a page ends at its last row's moment and id, and the
next starts after them. A row added or removed meanwhile neither repeats nor hides another,
and the hundredth page costs what the first does (no OFFSET to count through)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"(\d{1,20})\.(\d{1,18})")


class CursorError(ValueError):
    """A page cursor that is not one this app wrote."""


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: its last row's moment (a deadline, a time) and id. Written in a URL
    as microseconds since 1970 and the id: `1795428000000000.42`."""

    at: datetime
    row_id: int

    def __str__(self) -> str:
        return f"{(self.at - _EPOCH) // timedelta(microseconds=1)}.{self.row_id}"

    @classmethod
    def read(cls, text: str) -> Cursor:
        matched = _CURSOR.fullmatch(text)
        if matched is None:
            raise CursorError(f"{text[:40]!r} is not a page of this list")
        try:
            at = _EPOCH + timedelta(microseconds=int(matched.group(1)))
        except OverflowError:
            raise CursorError(f"{text[:40]!r} is not a page of this list") from None
        return cls(at, int(matched.group(2)))
