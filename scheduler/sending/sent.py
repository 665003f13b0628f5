"""What went out (or is going): every outbound message, the newest first, filtered by channel,
status, local days, customer and words, a page at a time by keyset (time, id). Follow-ups,
people's replies, acknowledgements and notices to staff alike: each is a `Message`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.orm import Session

from scheduler.db import Among
from scheduler.figures.period import Period
from scheduler.lifecycle import Channel, Direction
from scheduler.models import Customer, Message
from scheduler.paging import Cursor, beyond, cut
from scheduler.sending import sent_texts

PAGE = 100  # messages a page
# An outbound message's statuses: ours around the hand-over, then the provider's (Twilio's
# words; `stored` is the outbox transport's).
STATUSES = (
    "prepared",
    "handed_over",
    "uncertain",
    "not_sent",
    "unknown",
    "accepted",
    "scheduled",
    "queued",
    "sending",
    "sent",
    "stored",
    "delivered",
    "read",
    "undelivered",
    "failed",
    "canceled",
)


@dataclass(frozen=True)
class SentFilter:
    """Which outbound messages to show; the empty filter is all of them."""

    channel: Channel | None = None
    status: str | None = None  # one of STATUSES
    days: Period | None = None  # sent (written down) in these local days
    customer_id: int | None = None
    words: tuple[str, ...] = ()  # each in the text, or the customer's name, email or phone


NAMED_MOST = 1_000  # customers a word names, looked up first; more: read by join
WRITTEN_MOST = 10_000  # messages whose copy holds a word, looked up first (PostgreSQL)


def _has(session: Session, word: str) -> ColumnElement[bool]:
    """The word in the message, or in the name, email or phone of its customer. The
    customers it names are looked up first (an index on PostgreSQL) and given as ids, and on
    PostgreSQL the messages whose copied text holds it are counted first (`sent_texts`) and
    given as a query run once, so that a word nobody wrote is read from indexes, not from
    every message (5.5 s among a million); a word many wrote or naming very many customers is
    common, and found early by reading the messages, the newest first."""
    named = (
        Customer.name.icontains(word, autoescape=True),
        Customer.email.icontains(word, autoescape=True),
        Customer.phone.icontains(word, autoescape=True),
    )
    ids = session.scalars(select(Customer.id).where(or_(*named)).limit(NAMED_MOST + 1)).all()
    in_text = Message.body.icontains(word, autoescape=True)
    if sent_texts.kept(session):
        written = sent_texts.holding(session, word, WRITTEN_MOST)
        if written is not None:
            in_text = and_(Among(Message.id, written), in_text)
    if len(ids) > NAMED_MOST:
        return or_(in_text, *named)
    return or_(in_text, Message.customer_id.in_(ids))


def sent_messages(
    session: Session, wanted: SentFilter, *, after: Cursor | None = None, size: int | None = None
) -> tuple[list[tuple[Message, Customer | None]], Cursor | None]:
    """A page of the outbound messages the filter keeps with their customers, the newest
    first, after `after`; and where the next page starts (None on the last)."""
    size = size or PAGE
    kept: list[ColumnElement[bool]] = [Message.direction == Direction.OUTBOUND]
    if wanted.channel is not None:
        kept.append(Message.channel == wanted.channel)
    if wanted.status is not None:
        kept.append(Message.status == wanted.status)
    if wanted.days is not None:
        kept += [Message.created_at >= wanted.days.start, Message.created_at < wanted.days.end]
    if wanted.customer_id is not None:
        kept.append(Message.customer_id == wanted.customer_id)
    kept += [_has(session, word) for word in wanted.words]
    if after is not None:
        kept.append(beyond(Message.created_at, Message.id, after, newest_first=True))
    query = (
        select(Message, Customer)
        .outerjoin(Customer, Customer.id == Message.customer_id)
        .where(and_(true(), *kept))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(size + 1)
    )
    rows = [(message, customer) for message, customer in session.execute(query)]
    return cut(rows, size, lambda row: (row[0].created_at, row[0].id))
