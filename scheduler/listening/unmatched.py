"""Replies from addresses that belong to no customer: a person links them to a customer (one
who wrote from another phone), makes a customer of the sender, or dismisses them with a
reason. Each is done once, with who and why in the audit log: nothing a stranger writes is
dropped in silence."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.addresses import normalise_email, normalise_phone
from scheduler.casework.staff_actions import CaseworkError, written
from scheduler.config import Config
from scheduler.consent import ERASED_CUSTOMER
from scheduler.erasure import honour_earlier_no
from scheduler.lifecycle import Channel, Direction, MessageStatus
from scheduler.listening.inbound import attend_linked
from scheduler.models import Case, Customer, Message


def awaiting_a_person() -> ColumnElement[bool]:
    """A reply from nobody we know that a person has not dealt with yet."""
    return and_(
        Message.direction == Direction.INBOUND,
        Message.customer_id.is_(None),
        Message.needs_human.isnot(None),  # read by the worker: nobody's reply indeed
        Message.status != MessageStatus.DISMISSED,
    )


def unmatched_replies(session: Session, limit: int) -> list[Message]:
    """Newest first, those a person has not dealt with yet."""
    return list(
        session.scalars(
            select(Message)
            .where(awaiting_a_person())
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(limit)
        )
    )


def _still_unmatched(message: Message) -> None:
    if message.direction is not Direction.INBOUND:
        raise CaseworkError("only a reply from a customer can be matched")
    if message.customer_id is not None or message.status == MessageStatus.DISMISSED:
        raise CaseworkError("someone already dealt with this reply")
    if message.needs_human is None:
        raise CaseworkError("the worker has not read this reply yet: try again in a minute")


def link_reply(
    session: Session,
    message: Message,
    customer: Customer,
    *,
    open_case: bool,
    config: Config,
    now: datetime,
    actor: str,
) -> Case | None:
    """The reply is `customer`'s: it joins their history and is read as theirs. Not a customer
    erased on request: that would bring their story back."""
    _still_unmatched(message)
    if customer.erased_at is not None:
        raise CaseworkError(ERASED_CUSTOMER)
    case = attend_linked(
        session, customer, message, open_case=open_case, config=config, now=now, actor=actor
    )
    audit.record(
        session,
        at=now,
        actor=actor,
        action="reply.link",
        entity_type="message",
        entity_id=message.id,
        customer_id=customer.id,
        case_id=case.id if case else None,
    )
    return case


def customer_from_reply(
    session: Session, message: Message, *, name: str, config: Config, now: datetime, actor: str
) -> Customer:
    """A new customer with the sender's address (the reply's number, or its email)."""
    _still_unmatched(message)
    name = written(name, empty="say the customer's name", what="a name", most=200)
    try:
        if message.channel is Channel.EMAIL:
            phone, email = None, normalise_email(message.from_address)
        else:
            phone, email = normalise_phone(message.from_address, config.business.country), None
    except ValueError as error:
        raise CaseworkError(str(error)) from None
    taken = select(Customer.id).where(Customer.phone == phone if phone else Customer.email == email)
    if session.scalar(taken.limit(1)) is not None:
        raise CaseworkError("a customer already has this address: link the reply to them")
    customer = Customer(name=name, phone=phone, email=email, created_at=now)
    try:
        with session.begin_nested():  # two people converting replies from one number at once
            session.add(customer)
    except IntegrityError:
        raise CaseworkError("a customer already has this address: link the reply to them") from None
    honour_earlier_no(session, [(customer, now)], now=now, actor=actor)  # an erased one's no's
    audit.record(
        session,
        at=now,
        actor=actor,
        action="customer.create",
        entity_type="customer",
        entity_id=customer.id,
        from_message=message.id,
    )
    return customer


def dismiss_reply(
    session: Session, message: Message, *, reason: str, now: datetime, actor: str
) -> None:
    """Set the reply aside (spam, a wrong number), saying why; it stays in the database."""
    _still_unmatched(message)
    reason = written(reason, empty="say why it is dismissed", what="a reason", most=500)
    message.status, message.status_updated_at = MessageStatus.DISMISSED, now
    audit.record(
        session,
        at=now,
        actor=actor,
        action="reply.dismiss",
        entity_type="message",
        entity_id=message.id,
        reason=reason,
    )
