"""What the list pages share in reading their URL: a filter that cannot be read, and where a
page starts."""

from __future__ import annotations

from flask import request
from flask_babel import gettext as _

from scheduler.paging import Cursor, CursorError
from scheduler.typed_text import unfit_character

SEARCH_MOST = 200  # characters of a search


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


def search_text(text: str) -> str:
    """The words a list is searched by, as typed; UnreadableFilter when too long, or holding
    a character no database stores."""
    if len(text) > SEARCH_MOST or unfit_character(text):
        raise UnreadableFilter(_("Search: at most 200 plain characters."))
    return text
