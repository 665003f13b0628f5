"""Which open cases a person sees in the inbox: filtered (kind, assignee, overdue, channel,
product, opened between two days, words), the nearest deadline first, a page at a time.

Pages are cut by keyset, not offset: the next page starts after the last case shown (its
deadline and id), so a case opened or answered meanwhile neither repeats nor hides one, and the
hundredth page costs what the first does. Plain functions over a session; the web reads the
filter from the URL, so a view can be bookmarked and shared.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import ColumnElement, Row, Select, and_, exists, func, or_, select, true
from sqlalchemy.orm import Session

from scheduler.casework.notices import past_deadline
from scheduler.figures.period import Period
from scheduler.lifecycle import CaseStatus, Channel, Direction
from scheduler.listening.unmatched import awaiting_a_person
from scheduler.models import Case, Customer, Message
from scheduler.paging import Cursor, beyond, count_up_to, cut

PAGE = 50  # cases a page
COUNT_MOST = 1_000  # a search's matches counted so far, then "more than"
NAMED_MOST = 1_000  # customers a searched word names, kept by id (PostgreSQL)
WRITTEN_MOST = 5_000  # cases' messages holding a searched word, kept by case (PostgreSQL)
TRIGRAMS = re.compile(r"[^\W_]{3}")  # three letters or digits in a row: what pg_trgm indexes
WORDS_INDEXES = ("ix_customers_words", "ix_messages_case_words")  # migration 0029's, if pg_trgm
LOW_SCORE = "low_score"  # a kind: a case opened by a rating of 0-6, whatever its label
Query = TypeVar("Query", bound="Select[*tuple[Any, ...]]")  # any select over cases
Assignee = Literal["anyone", "mine", "nobody", "someone"]
ASSIGNEES: tuple[Assignee, ...] = ("anyone", "mine", "nobody", "someone")


@dataclass(frozen=True)
class CaseFilter:
    """What a person asks of the open cases; the empty filter is all of them."""

    kind: str | None = None  # a case's reason (the label that opened it), or LOW_SCORE
    assignee: Assignee = "anyone"
    overdue: bool = False  # unanswered and past the first-answer deadline
    channel: Channel | None = None  # the customer wrote on it in this case
    product_id: int | None = None  # the case is about a sale of it
    opened: Period | None = None  # opened in these local days
    words: tuple[str, ...] = ()  # each in the conversation, or the customer's name or address


@dataclass(frozen=True)
class Page:
    rows: list[tuple[Case, Customer]]
    matching: int  # open cases the filter keeps, on every page (a search: COUNT_MOST + 1 says more)
    following: Cursor | None  # where the next page starts; None on the last


def _indexed(session: Session) -> bool:
    """Whether the database has the trigram indexes of the customers' and the cases' words
    (PostgreSQL with pg_trgm): without them, counting a word's holders reads every row."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    found = select(*(func.to_regclass(name).is_not(None) for name in WORDS_INDEXES))
    return all(session.execute(found).one())


def _word(session: Session, word: str, *, indexed: bool) -> ColumnElement[bool]:
    """One word of a search: in the customer's name, phone or email, or in the case's
    conversation (case aside; `%` and `_` are plain characters here).

    With the trigram indexes (`indexed`), the customers and the cases' messages holding it are
    counted first from them: up to a few thousand, the cases are kept by those ids, read once,
    so that a word no case has is not looked up in every open case (25 000: 211 ms). More, or
    a word without three letters or digits in a row (no trigram to look up): each open
    case is looked up as `_searched` walks them, along the customer's key and the messages'
    index by case, and a common word stops the walk early. OFFSET 0 keeps PostgreSQL from
    making either EXISTS a subquery run once for all, which read every message holding the
    word before the first case (seconds for a word in thousands), or listed every customer
    holding it and scanned that list for each case (minutes for "gmail")."""
    named = or_(
        Customer.name.icontains(word, autoescape=True),
        Customer.phone.icontains(word, autoescape=True),
        Customer.email.icontains(word, autoescape=True),
    )
    written = and_(Message.case_id.is_not(None), Message.body.icontains(word, autoescape=True))
    indexed = indexed and TRIGRAMS.search(word) is not None
    customers = select(Customer.id).where(named).correlate(None)
    in_customer: ColumnElement[bool]
    in_conversation: ColumnElement[bool]
    if indexed and count_up_to(session, customers, NAMED_MOST) <= NAMED_MOST:
        in_customer = Case.customer_id.in_(customers)
    else:
        in_customer = (
            select(Customer.id).where(named, Customer.id == Case.customer_id).offset(0).exists()
        )
    conversations = select(Message.case_id).where(written).correlate(None)
    if indexed and count_up_to(session, conversations, WRITTEN_MOST) <= WRITTEN_MOST:
        in_conversation = Case.id.in_(conversations)
    else:
        in_conversation = (
            select(Message.id).where(Message.case_id == Case.id, written).offset(0).exists()
        )
    return or_(in_customer, in_conversation)


def _kept(session: Session, query: Query, wanted: CaseFilter, *, me: int, now: datetime) -> Query:
    """The query narrowed to the cases the filter keeps."""
    conditions: list[ColumnElement[bool]] = [Case.status == CaseStatus.OPEN]
    if wanted.kind == LOW_SCORE:
        conditions.append(
            exists().where(
                Message.case_id == Case.id,
                Message.direction == Direction.INBOUND,
                Message.score <= 6,
            )
        )
    elif wanted.kind is not None:
        conditions.append(Case.reason == wanted.kind)
    conditions.append(
        {
            "anyone": true(),
            "mine": Case.assignee_id == me,
            "nobody": Case.assignee_id.is_(None),
            "someone": Case.assignee_id.is_not(None),
        }[wanted.assignee]
    )
    if wanted.overdue:
        conditions.append(past_deadline(now))
    if wanted.channel is not None:
        conditions.append(
            exists().where(
                Message.case_id == Case.id,
                Message.direction == Direction.INBOUND,
                Message.channel == wanted.channel,
            )
        )
    if wanted.product_id is not None:
        conditions.append(Case.product_id == wanted.product_id)  # kept: migration 0042
    if wanted.opened is not None:
        period = wanted.opened
        conditions.extend([Case.opened_at >= period.start, Case.opened_at < period.end])
    if wanted.words:
        indexed = _indexed(session)
        conditions.extend(_word(session, word, indexed=indexed) for word in wanted.words)
    return query.where(*conditions)


def open_cases(
    session: Session,
    wanted: CaseFilter,
    *,
    me: int,
    now: datetime,
    after: Cursor | None = None,
    size: int | None = None,
) -> Page:
    """A page of the open cases the filter keeps, the nearest deadline first (then the
    oldest), starting after `after`, `size` of them (PAGE); with how many match in all (a
    search: up to COUNT_MOST, then "more than")."""
    size = size or PAGE
    if wanted.words:
        return _searched(session, wanted, me=me, now=now, after=after, size=size)
    # The filter runs once, and no more than a page of rows comes back: the open cases it
    # keeps are counted by a window over them all, then cut after `after` (each filter read
    # twice, for a count and a page, cost a words search 300 ms of 5 000 open cases).
    kept = _kept(
        session,
        select(Case.id, Case.first_response_due_at, func.count().over().label("matching")).join(
            Customer, Customer.id == Case.customer_id
        ),
        wanted,
        me=me,
        now=now,
    ).subquery()
    page = select(kept.c.id, kept.c.first_response_due_at, kept.c.matching)
    if after is not None:
        page = page.where(
            beyond(kept.c.first_response_due_at, kept.c.id, after, newest_first=False)
        )
    keys = session.execute(
        page.order_by(kept.c.first_response_due_at, kept.c.id).limit(size + 1)
    ).all()
    matching = keys[0].matching if keys else _matching(session, wanted, me=me, now=now, after=after)
    return _page(session, keys, matching, size)


def _searched(
    session: Session,
    wanted: CaseFilter,
    *,
    me: int,
    now: datetime,
    after: Cursor | None,
    size: int,
) -> Page:
    """`open_cases` for words. The open cases are walked by their deadline (migration 0035),
    each searched until a page is found, and counted no further than COUNT_MOST: words every
    open case holds were searched in all of them, then sorted (25 000 open cases: the page
    took 447 ms, now 63). A first page that is not full is the count."""
    kept = _kept(session, select(Case.id, Case.first_response_due_at), wanted, me=me, now=now)
    page = kept
    if after is not None:
        page = page.where(beyond(Case.first_response_due_at, Case.id, after, newest_first=False))
    by_deadline = (Case.first_response_due_at, Case.id)  # the walk, for the count too
    keys = session.execute(page.order_by(*by_deadline).limit(size + 1)).all()
    whole = after is None and len(keys) <= size  # a first page, not full: every match
    found = len(keys) if whole else count_up_to(session, kept.order_by(*by_deadline), COUNT_MOST)
    matching = min(found, COUNT_MOST + 1)  # one more says "more than", however found
    return _page(session, keys, matching, size)


def _page(
    session: Session, keys: Sequence[Row[*tuple[Any, ...]]], matching: int, size: int
) -> Page:
    """The cases of `keys` (rows of their `id` and `first_response_due_at`, in order, one past
    the page), with their customers."""
    due_and_id = {key.id: (key.first_response_due_at, key.id) for key in keys}
    ids, following = cut([key.id for key in keys], size, lambda case_id: due_and_id[case_id])
    read = session.execute(
        select(Case, Customer)
        .join(Customer, Customer.id == Case.customer_id)
        .where(Case.id.in_(ids))
    )
    found = {case.id: (case, customer) for case, customer in read}
    return Page([found[case_id] for case_id in ids if case_id in found], matching, following)


def _matching(
    session: Session, wanted: CaseFilter, *, me: int, now: datetime, after: Cursor | None
) -> int:
    """How many the filter keeps, for a page past the last (none after `after`)."""
    if after is None:
        return 0
    counted = _kept(
        session,
        select(func.count(Case.id)).join(Customer, Customer.id == Case.customer_id),
        wanted,
        me=me,
        now=now,
    )
    return session.scalar(counted) or 0


@dataclass(frozen=True)
class TabCounts:
    open: int
    mine: int
    waiting: int  # open and not answered yet: the tab title's count
    unmatched: int
    newest: int  # the latest open case's id (0 without one): a new case raises it


def tab_counts(session: Session, *, me: int) -> TabCounts:
    """How many cases each tab holds, in one round trip: the open cases read once for all
    their counts (a statement each read them four times, 41 ms of 25 000 open cases)."""
    unmatched = (
        select(func.count()).select_from(Message).where(awaiting_a_person()).scalar_subquery()
    )
    row = session.execute(
        select(
            func.count(),
            func.count().filter(Case.assignee_id == me),
            func.count().filter(Case.first_responded_at.is_(None)),
            unmatched,
            func.max(Case.id),
        ).where(Case.status == CaseStatus.OPEN)
    ).one()
    return TabCounts(*(int(count or 0) for count in row))
