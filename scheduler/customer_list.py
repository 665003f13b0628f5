"""The customer list: found by words in any order, sorted by latest purchase or by name, a
page at a time, each row with what a person looks for first (the latest sale, the next
follow-up, an open case).

Pages are cut by keyset. By latest purchase the page ends at its last row's `last_sold_at`
and id (customers who never bought, who only wrote in, follow by id, their moment written as
`NEVER`); by name it ends at the last row's name and id (a name changed meanwhile moves
that customer, never the page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.orm import Session, undefer

from scheduler.customer_editing import MAX_NAME
from scheduler.lifecycle import PENDING, CaseStatus
from scheduler.models import Case, Customer, FollowUp, Product, Sale
from scheduler.paging import Cursor, CursorError, beyond, count_up_to, cut, read_id
from scheduler.typed_text import search_words, unfit_character

PAGE = 50  # customers a page
COUNT_MOST = 1_000  # a search's matches counted so far, then "more than"
NEVER = datetime(1970, 1, 1, tzinfo=UTC)  # a cursor's moment for a customer who never bought


class Sort(StrEnum):
    LATEST = "latest"  # latest purchase first
    NAME = "name"


def found_by(session: Session, text: str) -> ColumnElement[bool]:
    """Customers that every word of the text finds, in any order ("quispe rosa"): in the name
    or email (case aside), in the phone (a word's digits, three or more), or as the number of
    one of their sales. Each part can be read from an index (on PostgreSQL trigram ones, see
    migration 0029): the sale's customer is looked up first, so that no subquery stops the
    database from combining them."""
    kept: list[ColumnElement[bool]] = []
    for word in search_words(text):
        digits = "".join(ch for ch in word if ch.isdigit())
        matches = [
            Customer.name.icontains(word, autoescape=True),
            Customer.email.icontains(word, autoescape=True),
        ]
        sold_to = session.scalar(select(Sale.customer_id).where(Sale.external_id == word))
        if sold_to is not None:
            matches.append(Customer.id == sold_to)
        if len(digits) >= 3:
            matches.append(Customer.phone.contains(digits))
        kept.append(or_(*matches))
    return and_(true(), *kept)


@dataclass(frozen=True)
class NameCursor:
    """Where a page by name ends: its last row's name and id, written `42.Rosa Quispe`."""

    name: str
    row_id: int

    def __str__(self) -> str:
        return f"{self.row_id}.{self.name}"


After = Cursor | NameCursor


def read_after(sort: Sort, text: str) -> After:
    """Where a page starts, as its link wrote it for this order; CursorError otherwise."""
    if sort is Sort.LATEST:
        return Cursor.read(text)
    number, _dot, name = text.partition(".")
    try:
        row_id = read_id(number)
    except ValueError:
        raise CursorError(f"{text[:40]!r} is not a page of this list") from None
    if not name or len(name) > MAX_NAME or unfit_character(name):
        raise CursorError(f"{text[:40]!r} is not a page of this list")
    return NameCursor(name, row_id)


@dataclass(frozen=True)
class Page:
    customers: list[Customer]
    matching: int  # customers the words find (COUNT_MOST + 1: more than COUNT_MOST)
    following: After | None  # where the next page starts; None on the last


def customer_page(
    session: Session,
    text: str = "",
    *,
    sort: Sort = Sort.LATEST,
    after: After | None = None,
    size: int | None = None,
) -> Page:
    """A page of the customers the words find, in `sort` order, after `after`, `size` of
    them (PAGE)."""
    size = size or PAGE
    # `last_sold_at` is written by the database: rows already in the session are read again.
    kept = (
        select(Customer)
        .where(found_by(session, text))
        .options(undefer(Customer.last_sold_at))
        .execution_options(populate_existing=True)
    )
    # Every customer counted; those a search finds up to COUNT_MOST (a word found in few of
    # 100 000 is a full read of them: once for the page, not twice).
    matching = (
        count_up_to(session, kept, COUNT_MOST)
        if search_words(text)
        else session.scalar(select(func.count()).select_from(Customer)) or 0
    )
    if sort is Sort.NAME:
        by_name = _by_name(session, kept, after if isinstance(after, NameCursor) else None, size)
        last = by_name[size - 1] if len(by_name) > size else None
        following = NameCursor(last.name, last.id) if last else None
        return Page(by_name[:size], matching, following)
    latest = _latest_first(session, kept, after if isinstance(after, Cursor) else None, size + 1)
    customers, newer = cut(latest, size, lambda row: (row.last_sold_at or NEVER, row.id))
    return Page(customers, matching, newer)


def _by_name(
    session: Session, kept: Select[Customer], after: NameCursor | None, size: int
) -> list[Customer]:
    """A page by name after `after`, read one row past it."""
    if after is not None:
        kept = kept.where(
            or_(
                Customer.name > after.name,
                and_(Customer.name == after.name, Customer.id > after.row_id),
            )
        )
    return list(session.scalars(kept.order_by(Customer.name, Customer.id).limit(size + 1)))


def _latest_first(
    session: Session, kept: Select[Customer], after: Cursor | None, limit: int
) -> list[Customer]:
    """Those who bought, latest first, then those who never did, newest first: two reads,
    each along its index, the second only when the first ends before the page does."""
    rows: list[Customer] = []
    if after is None or after.at != NEVER:
        bought = kept.where(Customer.last_sold_at.is_not(None))
        if after is not None:
            bought = bought.where(
                beyond(Customer.last_sold_at, Customer.id, after, newest_first=True)
            )
        order = (Customer.last_sold_at.desc(), Customer.id.desc())
        rows = list(session.scalars(bought.order_by(*order).limit(limit)))
    if len(rows) < limit:
        never = kept.where(Customer.last_sold_at.is_(None))
        if after is not None and after.at == NEVER:
            never = never.where(Customer.id < after.row_id)
        rows += session.scalars(never.order_by(Customer.id.desc()).limit(limit - len(rows)))
    return rows


@dataclass(frozen=True)
class Row:
    """What the list shows beside a customer's name."""

    latest_sale: Sale | None = None
    product: str | None = None  # the latest sale's product
    next_due: datetime | None = None  # the next follow-up that may still go out
    open_case: int | None = None  # the id of their earliest open case
    open_cases: int = 0


def beside(session: Session, customers: list[Customer]) -> dict[int, Row]:
    """The latest sale, next follow-up and open case of a page of customers: three reads,
    whatever the page's size."""
    ids = [customer.id for customer in customers]
    latest: dict[int, tuple[Sale | None, str | None]] = {}
    for bought, product_name in session.execute(
        select(Sale, Product.name)
        .join(Customer, Customer.id == Sale.customer_id)
        .outerjoin(Product, Product.id == Sale.product_id)
        .where(Sale.customer_id.in_(ids), Sale.sold_at == Customer.last_sold_at)
        .order_by(Sale.id)
    ):
        latest[bought.customer_id] = (bought, product_name)  # of two at one moment, the last
    next_due: dict[int, datetime] = {
        customer_id: due
        for customer_id, due in session.execute(
            select(FollowUp.customer_id, func.min(FollowUp.due_at))
            .where(FollowUp.customer_id.in_(ids), FollowUp.status.in_(PENDING))  # may still go
            .group_by(FollowUp.customer_id)
        )
    }
    cases: dict[int, tuple[int | None, int]] = {
        customer_id: (first, count)
        for customer_id, first, count in session.execute(
            select(Case.customer_id, func.min(Case.id), func.count())
            .where(Case.customer_id.in_(ids), Case.status == CaseStatus.OPEN)
            .group_by(Case.customer_id)
        )
    }
    rows: dict[int, Row] = {}
    for customer_id in ids:
        sale, product = latest.get(customer_id, (None, None))
        first, count = cases.get(customer_id, (None, 0))
        rows[customer_id] = Row(sale, product, next_due.get(customer_id), first, count)
    return rows
