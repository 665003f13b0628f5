"""What the list pages share in reading their URL: a filter that cannot be read, and where a
page starts."""

from __future__ import annotations

from flask import request

from scheduler.paging import Cursor, CursorError


class UnreadableFilter(ValueError):
    """A filter of a list that cannot be read: the message names the field, for a 400."""


def page_start(problem: str) -> Cursor | None:
    """The page the URL asks for (`after`), None for the first; UnreadableFilter(problem)
    for a cursor this app did not write."""
    text = request.args.get("after", "")
    if not text:
        return None
    try:
        return Cursor.read(text)
    except CursorError:
        raise UnreadableFilter(problem) from None
