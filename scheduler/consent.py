"""A customer's consent per channel: opting out and back in, and what that does at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.lifecycle import (
    PENDING,
    Channel,
    ConsentSource,
    FollowUpStatus,
    MessageStatus,
)
from scheduler.models import Customer, FollowUp, Message, nothing_in_flight
from scheduler.typed_text import typed_text

WITHDRAWN = "not sent: the customer opted out of this channel after it was queued"
MAX_REASON = 200


ERASED_CUSTOMER = "the customer was erased on request: nothing can be sent to them again"


def withdrawal(now: datetime) -> dict[str, object]:
    """What a queued message not handed over yet becomes when it must not go after all."""
    return {
        "status": MessageStatus.FAILED,
        "error_message": WITHDRAWN,
        "status_updated_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
    }


class ConsentError(ValueError):
    """A change of consent that cannot be made as asked; the message says why, for the person."""


def staff_reason(reason: str | None) -> str:
    """Why a person changes a customer's consent, trimmed; ConsentError when it is missing."""
    return typed_text(
        reason,
        empty="say why (the customer's words, or how they asked)",
        what="a reason",
        most=MAX_REASON,
        error=ConsentError,
    )


def staff_wording(customer: Customer, channel: Channel, reason: str | None, *, by: str) -> str:
    """The wording kept for a consent change a person makes on the customer's word: who, and
    why. Refused without a reason, and on a channel the customer has no address for."""
    if customer.address(channel) is None:
        raise ConsentError("the customer has no address for that channel")
    return f"{by}: {staff_reason(reason)}"


def _lock(session: Session, customer: Customer) -> None:
    """Wait for a worker preparing this customer's messages (it locks them too), so that what
    it prepared is handed over seeing the consent as it is now; and take turns with another
    change of this customer's consent."""
    session.execute(select(Customer.id).where(Customer.id == customer.id).with_for_update())


def opt_out(
    session: Session,
    customer: Customer,
    *,
    channel: Channel,
    source: ConsentSource,
    via: str,
    now: datetime,
    actor: str,
) -> int:
    """Record the opt-out (when, where from, and in words how), and settle at once, not at their
    send time, what waits for the customer on that channel: pending follow-ups are skipped, and
    queued messages not yet handed over (a person's reply, an acknowledgement) are not sent.
    Returns how many follow-ups were skipped. Idempotent: the first opt-out's time, source and
    wording are kept. Every opt-out, from wherever it comes, goes through here."""
    _lock(session, customer)
    if customer.opt_out_at(channel) is not None:
        return 0
    customer.record_opt_out(channel, now, via, source)
    pending = session.scalars(
        select(FollowUp)
        .where(
            FollowUp.customer_id == customer.id,
            FollowUp.channel == channel,
            FollowUp.status.in_(PENDING),
            nothing_in_flight(),
        )
        .with_for_update(of=FollowUp)
    ).all()
    for row in pending:
        row.move_to(FollowUpStatus.SKIPPED, f"the customer opted out ({via})", now)
    # One that may have left already (`uncertain`) is looked up first, then withdrawn when the
    # worker prepares it; one being handed over right now is the worker's, which waited on the
    # lock.
    withdrawn = session.scalars(
        update(Message)
        .where(
            Message.customer_id == customer.id,
            Message.channel == channel,
            Message.due_at.isnot(None),
            Message.status.in_((MessageStatus.PREPARED, MessageStatus.NOT_SENT)),
        )
        .values(withdrawal(now))
        .returning(Message.id),
        execution_options={"synchronize_session": False},
    ).all()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="customer.opt_out",
        entity_type="customer",
        entity_id=customer.id,
        channel=channel.value,
        source=source.value,
        via=via,
        follow_ups_skipped=len(pending),
        messages_withdrawn=len(withdrawn),
    )
    return len(pending)


def opt_in(
    session: Session, customer: Customer, *, channel: Channel, via: str, now: datetime, actor: str
) -> bool:
    """Clear an opt-out; returns whether there was one. Follow-ups skipped meanwhile stay
    skipped: their moment has passed. On WhatsApp, where nothing goes without a yes, the yes
    is recorded too (when, and `via`): returns whether either changed. Refused for a customer
    erased on request: nobody is left to have said yes."""
    if customer.erased_at is not None:
        raise ConsentError(ERASED_CUSTOMER)
    _lock(session, customer)
    said_yes = channel is Channel.WHATSAPP and (
        customer.whatsapp_opt_in_at is None or customer.whatsapp_opt_out_at is not None
    )  # a first yes, or a new one after a no: when and how are this one's
    if said_yes:
        customer.whatsapp_opt_in_at, customer.whatsapp_opt_in_via = now, via
    if customer.opt_out_at(channel) is None and not said_yes:
        return False
    customer.record_opt_out(channel, None, None, None)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="customer.opt_in",
        entity_type="customer",
        entity_id=customer.id,
        channel=channel.value,
        via=via,
    )
    return True
