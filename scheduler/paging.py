"""Pages of a long list cut by keyset: a page ends at its last row's moment and id, and the
next starts after them. A row added or removed meanwhile neither repeats nor hides another,
and the hundredth page costs what the first does (no OFFSET to count through)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

T = TypeVar("T")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"(\d{1,20})\.(\d{1,10})")
ID_MOST = 2**31 - 1  # the tables' ids are 32-bit integers: a bigger number names no row


def read_id(text: str) -> int:
    """A row's id as a URL or a form gives it; ValueError for anything that cannot be one
    (a database would refuse a number past ID_MOST rather than find nothing)."""
    if not (text.isascii() and text.isdigit() and len(text) <= 10) or int(text) > ID_MOST:
        raise ValueError(f"{text[:20]!r} is not a row's id")
    return int(text)


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
            return cls(at, read_id(matched.group(2)))
        except (OverflowError, ValueError):
            raise CursorError(f"{text[:40]!r} is not a page of this list") from None


def beyond(moment: Any, row_id: Any, after: Cursor, *, newest_first: bool) -> ColumnElement[bool]:
    """The rows a page after `after` may hold, in the order (moment, id), ascending or
    newest first: the ties on the moment go on by id."""
    if newest_first:
        return or_(moment < after.at, and_(moment == after.at, row_id < after.row_id))
    return or_(moment > after.at, and_(moment == after.at, row_id > after.row_id))


def cut(
    rows: Sequence[T], size: int, where: Callable[[T], tuple[datetime, int]]
) -> tuple[list[T], Cursor | None]:
    """A page of `size` from rows read one past it, and where the next page starts (None on
    the last): the extra row says there is one, `where` names a row's moment and id."""
    if len(rows) <= size:
        return list(rows), None
    page = list(rows[:size])
    return page, Cursor(*where(page[-1]))


def count_up_to(session: Session, query: Select[*tuple[Any, ...]], most: int) -> int:
    """How many rows `query` keeps, counted no further than `most` + 1 (more than `most`
    says "more than `most`"): a count reads every row it counts, and a list says how many
    there are without reading a year of them."""
    return session.scalar(select(func.count()).select_from(query.limit(most + 1).subquery())) or 0
