"""What went out (or is going): every outbound message, the newest first, filtered by channel,
status, local days, customer and words, a page at a time by keyset (time, id). Follow-ups,
people's replies, acknowledgements and notices to staff alike: each is a `Message`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.orm import Session

from scheduler.figures.period import Period
from scheduler.lifecycle import Channel, Direction
from scheduler.models import Customer, Message
from scheduler.paging import Cursor, beyond, cut

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
    words: tuple[str, ...] = ()  # each in the subject, text or address, or the customer's name


def _has(word: str) -> ColumnElement[bool]:
    """The word in the message or its address, or in the name of its customer (joined)."""
    return or_(
        Message.body.icontains(word, autoescape=True),
        Message.subject.icontains(word, autoescape=True),
        Message.to_address.icontains(word, autoescape=True),
        Customer.name.icontains(word, autoescape=True),
    )


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
    kept += [_has(word) for word in wanted.words]
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
