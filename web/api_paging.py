"""Cursor pagination for every list of the JSON API: `?limit=` and `?cursor=`, `next_cursor`.

Keyset, never OFFSET: a page starts after the last row of the one before, by the list's own
order (which always ends with the id, so that it is total). Rows added while someone pages are
then neither skipped nor shown twice, and a deep page costs what the first does. The cursor is
the last row's sort key as urlsafe base64 of JSON: opaque to clients, and checked value by value
when it comes back, so that a tampered one is a 400 naming `cursor`, never a database error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVarTuple

from flask import request
from sqlalchemy import ColumnElement, Row, Select, TypeDecorator, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from scheduler.typed_text import unfit_character

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_CURSOR = 2000  # characters: a sort key of a few short values, whatever the list
BIGINT = 2**63 - 1  # what an id or a number in a key can be on PostgreSQL
Problem = tuple[str | None, str]
Order = Sequence[InstrumentedAttribute[Any]]
Ts = TypeVarTuple("Ts")
UNREADABLE = "is not a cursor this list gave: start again without it"


@dataclass(frozen=True)
class Paging:
    """A page asked for: at most `limit` rows of a list in `order`, after the row whose sort
    key is `after` (None: from the start)."""

    order: Order
    limit: int
    after: tuple[Any, ...] | None


def _encode(values: Sequence[Any]) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat()
        return value

    text = json.dumps([plain(value) for value in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _value(column: InstrumentedAttribute[Any], raw: Any) -> Any:
    """The value of `column` that `raw` (from a cursor) stands for; ValueError if none."""
    sql_type = column.type
    if isinstance(sql_type, TypeDecorator):  # UTCDateTime: its python_type is the impl's
        sql_type = sql_type.impl_instance
    kind = sql_type.python_type
    if issubclass(kind, Enum):
        return kind(raw)
    if kind is int and type(raw) is int and -BIGINT <= raw <= BIGINT:
        return raw
    if kind is str and isinstance(raw, str) and unfit_character(raw) is None:
        return raw
    if kind is datetime and isinstance(raw, str):
        value = datetime.fromisoformat(raw)
        if value.tzinfo is not None:
            return value.astimezone(UTC)  # OverflowError at year 1 or 9999: refused below
    raise ValueError(raw)


def decode_cursor(cursor: str, order: Order) -> tuple[Any, ...]:
    """The sort key in `cursor` as values of the `order` columns; ValueError if it is not one."""
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError("too long")
        data = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(data)
        if not isinstance(values, list) or len(values) != len(order):
            raise ValueError("not a key of this list")
        return tuple(_value(column, raw) for column, raw in zip(order, values, strict=True))
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error):
        raise ValueError(UNREADABLE) from None


def read_paging(order: Order, problems: list[Problem]) -> Paging:
    """The page the request asks for (`limit`, `cursor`) in `order`; what is wrong with them
    goes to `problems`, and the first page of the default size is returned instead."""
    limit, after = DEFAULT_LIMIT, None
    text = request.args.get("limit", "").strip()
    if text:
        number = int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else 0
        if not 1 <= number <= MAX_LIMIT:
            problems.append(("limit", f"must be a whole number between 1 and {MAX_LIMIT}"))
        else:
            limit = number
    cursor = request.args.get("cursor", "").strip()
    if cursor:
        try:
            after = decode_cursor(cursor, order)
        except ValueError as error:
            problems.append(("cursor", str(error)))
    return Paging(order, limit, after)


def _after(order: Order, key: tuple[Any, ...]) -> ColumnElement[bool]:
    """Rows after `key` in ascending `order`: (a > x) or (a = x and b > y) or ..."""
    return or_(
        *(
            and_(*(order[j] == key[j] for j in range(i)), order[i] > key[i])
            for i in range(len(order))
        )
    )


def page(session: Session, query: Select[*Ts], paging: Paging) -> tuple[list[Row[*Ts]], str | None]:
    """The rows of `query` on the page asked for, and the cursor of the next (None at the end).

    The first entity of each row holds the order's columns (`select(Case, Customer)` ordered by
    Case's); `query` must not be ordered or limited already.
    """
    if paging.after is not None:
        query = query.where(_after(paging.order, paging.after))
    query = query.order_by(*paging.order).limit(paging.limit + 1)
    rows = list(session.execute(query).all())
    if len(rows) <= paging.limit:
        return rows, None
    rows = rows[: paging.limit]
    last: Sequence[Any] = tuple(rows[-1])
    return rows, _encode([getattr(last[0], column.key) for column in paging.order])
