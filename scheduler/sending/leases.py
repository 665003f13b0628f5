"""The statements behind a lease: claim what is due, renew it at the hand-over, record a send,
take back what a worker left; for follow-ups, and for messages queued on their own (a person's
reply, an acknowledgement, a notice to staff). Each is one atomic statement (or two in one
transaction), safe with many workers on one database; dispatch decides when to run them.

PostgreSQL skips rows another worker has locked (`FOR UPDATE SKIP LOCKED`); SQLite runs one
writer at a time, so the same statements are atomic there too. The per-chunk ones use Core
tables: no ORM bookkeeping on the path every send takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Exists,
    Integer,
    String,
    Table,
    Update,
    and_,
    case,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from scheduler.bulk_writes import update_each
from scheduler.db import Among
from scheduler.lifecycle import UNFINISHED, WAITING, Channel, FollowUpStatus, MessageStatus
from scheduler.models import Base, FollowUp, Message
from scheduler.sending.delivery import OURS
from scheduler.sending.pauses import may_go
from scheduler.sending.transports import Sent

# Core tables for the statements run once per chunk of sends: no ORM bookkeeping on that path.
FOLLOW_UPS = Base.metadata.tables["follow_ups"]
MESSAGES = Base.metadata.tables["messages"]
CUSTOMERS = Base.metadata.tables["customers"]


def _opted_out(table: Table, *, needs_yes: bool) -> Exists:
    """Whether the row's customer has opted out of the row's channel; with `needs_yes`, also
    whether they never said yes to WhatsApp (a follow-up is the business writing first; a
    queued answer replies inside the window the customer's own message opened)."""
    said_no = [
        and_(table.c.channel == channel, CUSTOMERS.c[f"{channel}_opt_out_at"].isnot(None))
        for channel in Channel
    ]
    if needs_yes:
        said_no.append(
            and_(table.c.channel == Channel.WHATSAPP, CUSTOMERS.c.whatsapp_opt_in_at.is_(None))
        )
    return (
        select(CUSTOMERS.c.id).where(CUSTOMERS.c.id == table.c.customer_id, or_(*said_no)).exists()
    )


# A follow-up's message is judged on its own channel (the follow-up keeps the one it was
# planned on: an SMS step may go by WhatsApp).
MESSAGE_OPTED_OUT = _opted_out(MESSAGES, needs_yes=True)
QUEUED_CUSTOMER_OPTED_OUT = _opted_out(MESSAGES, needs_yes=False)  # a notice: no customer


def _record_message(each: Mapping[str, ColumnElement[Any]], now: datetime) -> Update:
    """A message's provider id and first status; a delivery report may have come first: never
    step back from it. No WHERE: `update_each` matches each row to its key."""
    return update(MESSAGES).values(
        provider_id=each["p"],
        status=case(
            # Constants written into the SQL: one text and plan, whatever the statuses.
            (MESSAGES.c.status.in_([literal_column(f"'{s}'") for s in OURS]), each["s"]),
            else_=MESSAGES.c.status,
        ),
        status_updated_at=now,
    )


def _record_sent(each: Mapping[str, ColumnElement[Any]], now: datetime) -> Update:
    """A follow-up sent; no WHERE, as `_record_message`."""
    return update(FOLLOW_UPS).values(
        status=FollowUpStatus.SENT,
        status_reason=None,
        provider_id=each["p"],
        sent_at=now,
        updated_at=now,
        lease_owner=None,
        lease_expires_at=None,
    )


def take_back(session: Session, *, worker_id: str, now: datetime) -> int:
    """Follow-ups whose worker's lease ran out, and those a broken-off pass of `worker_id`
    left claimed, go back to `scheduled`; their messages that may have left become
    `uncertain` (looked up before any resend), those prepared only `not_sent`."""
    stale = list(
        session.scalars(
            select(FollowUp.id)
            .where(
                FollowUp.status == FollowUpStatus.SENDING,
                or_(FollowUp.lease_expires_at < now, FollowUp.lease_owner == worker_id),
            )
            .with_for_update(skip_locked=True)
        )
    )
    if not stale:
        return 0
    for before, after in (
        (MessageStatus.HANDED_OVER, MessageStatus.UNCERTAIN),
        (MessageStatus.PREPARED, MessageStatus.NOT_SENT),
    ):
        session.execute(
            update(Message)
            .where(Among(Message.follow_up_id, stale), Message.status == before)
            .values(status=after, status_updated_at=now),
            execution_options={"synchronize_session": False},
        )
    session.execute(
        update(FollowUp)
        .where(Among(FollowUp.id, stale), FollowUp.status == FollowUpStatus.SENDING)
        .values(
            status=FollowUpStatus.SCHEDULED,
            status_reason="taken back from a worker that stopped mid-send",
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        ),
        execution_options={"synchronize_session": False},
    )
    return len(stale)


def due_now(now: datetime) -> ColumnElement[bool]:
    """The follow-ups a worker would claim now: scheduled, due, not paused."""
    return and_(FollowUp.status == FollowUpStatus.SCHEDULED, FollowUp.due_at <= now, may_go())


def claim(
    session: Session, *, worker_id: str, now: datetime, lease: timedelta, size: int
) -> list[int]:
    """Mark up to `size` due follow-ups as `worker_id`'s until `now + lease`; others skip them,
    and none that is paused (itself, its cadence, or the business: `pauses.may_go`)."""
    # A CTE, not `IN (subquery)`: PostgreSQL may run a LIMIT subquery more than once per
    # UPDATE, and each run skips different locked rows, so a claim could exceed its size. Its
    # ids are then looked up by key (`Among` of a query), not joined.
    due = (
        select(FollowUp.id)
        .where(due_now(now))
        .order_by(FollowUp.due_at, FollowUp.id)
        .limit(size)
        .with_for_update(of=FollowUp, skip_locked=True)
        .cte("due")
    )
    statement = (
        update(FollowUp)
        .where(Among(FollowUp.id, select(due.c.id)))
        .where(FollowUp.status == FollowUpStatus.SCHEDULED)
        .values(
            status=FollowUpStatus.SENDING,
            lease_owner=worker_id,
            lease_expires_at=now + lease,
            updated_at=now,
        )
        .returning(FollowUp.id)
    )
    result = session.execute(statement, execution_options={"synchronize_session": False})
    return sorted(result.scalars())


def hand_over(
    session: Session,
    messages: Mapping[int, int],
    *,
    worker_id: str,
    now: datetime,
    lease: timedelta,
) -> set[int]:
    """Of `messages` (follow-up id -> message id), renew the leases still `worker_id`'s whose
    customer has not opted out of the message's channel meanwhile, count the attempt, and mark
    their messages `handed_over`. Returns the follow-ups that may be sent."""
    # Read apart from the UPDATE: as a subquery of it, it was read again for each follow-up.
    refused = set(
        session.scalars(
            select(MESSAGES.c.follow_up_id).where(
                Among(MESSAGES.c.id, messages.values()), MESSAGE_OPTED_OUT
            )
        )
    )
    renewed = set(
        session.scalars(
            update(FOLLOW_UPS)
            .where(
                Among(FOLLOW_UPS.c.id, [f for f in messages if f not in refused]),
                FOLLOW_UPS.c.status == FollowUpStatus.SENDING,
                FOLLOW_UPS.c.lease_owner == worker_id,
                FOLLOW_UPS.c.lease_expires_at > now,
            )
            .values(
                lease_expires_at=now + lease,
                attempts=FOLLOW_UPS.c.attempts + 1,
                updated_at=now,
            )
            .returning(FOLLOW_UPS.c.id)
        )
    )
    mine = [message for follow_up, message in messages.items() if follow_up in renewed]
    if mine:
        session.execute(
            update(MESSAGES)
            .where(Among(MESSAGES.c.id, mine))
            .values(status=MessageStatus.HANDED_OVER, status_updated_at=now)
        )
    return renewed


def record_sent(
    session: Session, sent: Mapping[int, tuple[int, Sent]], *, worker_id: str, now: datetime
) -> set[int]:
    """Record sends that worked (follow-up id -> message id and what the provider said): every
    message, whoever holds its follow-up now; the follow-ups still `worker_id`'s become `sent`.
    Returns the ids of those; the others' leases were lost."""
    mine = set(
        session.scalars(
            select(FOLLOW_UPS.c.id)
            .where(
                Among(FOLLOW_UPS.c.id, sent),
                FOLLOW_UPS.c.status == FollowUpStatus.SENDING,
                FOLLOW_UPS.c.lease_owner == worker_id,
            )
            .with_for_update()
        )
    )
    update_each(
        session,
        MESSAGES.c.id,
        [{"m": message, "p": s.provider_id, "s": s.status} for message, s in sent.values()],
        {"m": Integer(), "p": String(), "s": String()},
        lambda each: _record_message(each, now),
    )
    ours = [
        {"f": follow_up, "p": s.provider_id}
        for follow_up, (_, s) in sent.items()
        if follow_up in mine
    ]
    # SENDING -> SENT, the transition the WHERE of `mine` checked
    update_each(
        session,
        FOLLOW_UPS.c.id,
        ours,
        {"f": Integer(), "p": String()},
        lambda each: _record_sent(each, now),
    )
    return mine


def sent_in_place(session: Session, sent: Mapping[int, Sent], *, now: datetime) -> None:
    """Follow-ups (id -> what the transport said) whose message was stored in the transaction
    that holds them locked and leased (the outbox): the attempt is counted and the send
    recorded at once."""
    update_each(
        session,
        FOLLOW_UPS.c.id,
        [{"f": follow_up, "p": s.provider_id} for follow_up, s in sent.items()],
        {"f": Integer(), "p": String()},
        lambda each: _record_sent(each, now).values(attempts=FOLLOW_UPS.c.attempts + 1),
    )


# --- messages queued on their own: the message row holds its own lease ---------------------------


def take_back_queued(session: Session, *, worker_id: str, now: datetime) -> int:
    """Queued messages whose worker's lease ran out, and those a broken-off pass of `worker_id`
    left claimed, are free again; one that was being handed over becomes `uncertain` (looked
    up before any resend)."""
    stale = list(
        session.scalars(
            select(Message.id)
            .where(
                Message.due_at.isnot(None),
                Message.status.in_(UNFINISHED),
                Message.lease_owner.isnot(None),
                or_(Message.lease_expires_at < now, Message.lease_owner == worker_id),
            )
            .with_for_update(skip_locked=True)
        )
    )
    if not stale:
        return 0
    handed_over = Message.status == MessageStatus.HANDED_OVER
    session.execute(
        update(Message)
        .where(Among(Message.id, stale))
        .values(
            status=case((handed_over, MessageStatus.UNCERTAIN.value), else_=Message.status),
            status_updated_at=now,
            lease_owner=None,
            lease_expires_at=None,
        ),
        execution_options={"synchronize_session": False},
    )
    return len(stale)


def claim_queued(
    session: Session, *, worker_id: str, now: datetime, lease: timedelta, size: int
) -> list[int]:
    """Mark up to `size` queued messages that are due as `worker_id`'s until `now + lease`."""
    due = (  # a CTE, as in `claim`
        select(Message.id)
        .where(
            Message.due_at <= now,
            Message.status.in_(WAITING),
            Message.lease_owner.is_(None),
        )
        .order_by(Message.due_at, Message.id)
        .limit(size)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    statement = (
        update(Message)
        .where(Among(Message.id, select(due.c.id)), Message.lease_owner.is_(None))
        .values(lease_owner=worker_id, lease_expires_at=now + lease)
        .returning(Message.id)
    )
    result = session.execute(statement, execution_options={"synchronize_session": False})
    return sorted(result.scalars())


def hand_over_queued(
    session: Session, ids: list[int], *, worker_id: str, now: datetime, lease: timedelta
) -> set[int]:
    """Of the queued messages `ids`, those still `worker_id`'s, still to be sent and whose
    customer (if any) has not opted out meanwhile become `handed_over`, with the lease renewed
    and the attempt counted. Returns their ids."""
    return set(
        session.scalars(
            update(MESSAGES)
            .where(
                Among(MESSAGES.c.id, ids),
                MESSAGES.c.status.in_([MessageStatus.PREPARED, MessageStatus.NOT_SENT]),
                MESSAGES.c.lease_owner == worker_id,
                MESSAGES.c.lease_expires_at > now,
                ~QUEUED_CUSTOMER_OPTED_OUT,
            )
            .values(
                status=MessageStatus.HANDED_OVER,
                attempts=MESSAGES.c.attempts + 1,
                lease_expires_at=now + lease,
                status_updated_at=now,
            )
            .returning(MESSAGES.c.id)
        )
    )
