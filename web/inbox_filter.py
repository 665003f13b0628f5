"""The inbox's filter as the URL gives it (`kind`, `assignee`, `overdue`, `channel`, `product`
by SKU, `from` and `to` as local days, `q` for words, `after` for the page): read into the
domain's `CaseFilter`, or refused with the field and the reason in the reader's language."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.casework.cases import AT_RISK
from scheduler.casework.inbox import (
    ASSIGNEES,
    LOW_SCORE,
    CaseFilter,
)
from scheduler.figures.period import PeriodError, days_between
from scheduler.lifecycle import Channel
from scheduler.listening.classify import Label
from scheduler.models import Product
from scheduler.paging import Cursor, CursorError
from scheduler.typed_text import search_words, unfit_character
from web.domain_texts import translated
from web.list_filters import SEARCH_MOST

KINDS = (Label.OBJECTION, Label.QUESTION, LOW_SCORE, Label.HELP, Label.NEUTRAL, AT_RISK)
FIELDS = ("kind", "assignee", "overdue", "channel", "product", "from", "to", "q")
VIEW = (*FIELDS, "tab", "after")  # what a link back to the same view of the inbox keeps


class UnreadableFilter(ValueError):
    """A filter that cannot be read: the message names the field and says why."""


@dataclass(frozen=True)
class Asked:
    """The filter, the page it starts after, and the query that asks for them again."""

    filter: CaseFilter
    after: Cursor | None
    query: dict[str, str]  # the filter's own fields, as given (for links and the form)


def read_filter(args: Mapping[str, str], session: Session, *, tz: ZoneInfo, mine: bool) -> Asked:
    """The filter of the URL; `mine` for the tab of one's own cases. UnreadableFilter says
    which field is wrong."""
    given = {field: args[field].strip() for field in FIELDS if args.get(field, "").strip()}
    kind = given.get("kind")
    if kind is not None and kind not in {str(known) for known in KINDS}:
        raise UnreadableFilter(_("Kind: %(kind)s is not a kind of case.", kind=kind[:40]))
    assignee = "mine" if mine else given.get("assignee", "anyone")
    if assignee not in ASSIGNEES:
        raise UnreadableFilter(_("Assigned to: choose anyone, me, nobody or someone."))
    channel = given.get("channel")
    if channel is not None and channel not in {item.value for item in Channel}:
        raise UnreadableFilter(_("Channel: choose SMS, email or WhatsApp."))
    product_id = None
    if "product" in given:
        sku = given["product"]
        product_id = session.scalar(select(Product.id).where(Product.sku == sku[:200]))
        if product_id is None:
            raise UnreadableFilter(_("Product: no product has the SKU %(sku)s.", sku=sku[:100]))
    try:
        opened = (
            days_between(given.get("from"), given.get("to"), tz=tz)
            if "from" in given or "to" in given
            else None
        )
    except PeriodError as problem:
        label = _("Opened from") if problem.field == "from" else _("Opened until")
        raise UnreadableFilter(f"{label}: {translated(problem)}") from None
    if given.get("overdue", "1") != "1":
        raise UnreadableFilter(_("Overdue: tick it, or leave it out."))
    words = given.get("q", "")
    unfit = unfit_character(words)
    if unfit or len(words) > SEARCH_MOST:
        reason = (
            translated(unfit) if unfit else _("at most %(count)d characters", count=SEARCH_MOST)
        )
        raise UnreadableFilter(_("Search: %(reason)s.", reason=reason))
    after = None
    if args.get("after"):
        try:
            after = Cursor.read(args["after"])
        except CursorError:
            raise UnreadableFilter(_("Page: this link is not a page of the inbox.")) from None
    wanted = CaseFilter(
        kind=kind,
        assignee=assignee,
        overdue=given.get("overdue") == "1",
        channel=Channel(channel) if channel else None,
        product_id=product_id,
        opened=opened,
        words=search_words(words),
    )
    return Asked(wanted, after, given)
