"""What became of a message we sent: our statuses before the hand-over, the provider's after.

Providers report delivery in any order (a late "sent" may arrive after "delivered"), so a status
only ever moves forward in rank. The follow-up follows its message: delivered, or failed with the
carrier's error code; and a callback is proof enough to settle a follow-up marked `unknown`.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.consent import opt_out
from scheduler.lifecycle import (
    Channel,
    ConsentSource,
    Direction,
    FollowUpStatus,
    MessageStatus,
    ProviderStatus,
)
from scheduler.models import Customer, FollowUp, Message
from scheduler.sending.queueing import queue
from scheduler.sending.transports import reports_unsubscribed
from scheduler.sending.whatsapp import by_sms_instead

log = logging.getLogger(__name__)


OURS = (
    MessageStatus.PREPARED,
    MessageStatus.HANDED_OVER,
    MessageStatus.UNCERTAIN,
    MessageStatus.NOT_SENT,
)
# In the order a message moves through them; equal ranks are alternative endings.
RANK: dict[str, int] = {
    ProviderStatus.ACCEPTED: 1,
    ProviderStatus.SCHEDULED: 1,
    ProviderStatus.QUEUED: 2,
    ProviderStatus.SENDING: 3,
    ProviderStatus.SENT: 4,
    ProviderStatus.STORED: 4,
    ProviderStatus.DELIVERED: 5,
    ProviderStatus.UNDELIVERED: 5,
    ProviderStatus.FAILED: 5,
    ProviderStatus.CANCELED: 5,
    ProviderStatus.READ: 6,
}
DELIVERED = (ProviderStatus.DELIVERED, ProviderStatus.READ)
UNDELIVERED = (ProviderStatus.UNDELIVERED, ProviderStatus.FAILED, ProviderStatus.CANCELED)
TWILIO_21610 = "Twilio error 21610: replied STOP to our number"


def moves_forward(current: str, new: str) -> bool:
    """Whether `new` may replace `current`: any provider status replaces ours; then by rank."""
    if new not in RANK:
        return False
    return current in OURS or RANK[new] > RANK.get(current, 0)


def apply_status(
    session: Session,
    *,
    provider_id: str,
    status: str,
    error_code: str | None,
    follow_up_id: int | None,
    now: datetime,
) -> Message | None:
    """Record a delivery report; returns the message it was about, or None if none is ours.

    The message is found by the provider's id, or, when the report beats our own record of the
    send, by the follow-up named in the callback URL.
    """
    message = session.scalar(select(Message).where(Message.provider_id == provider_id))
    if message is None and follow_up_id is not None:
        message = session.scalar(  # the attempt not yet recorded: the newest without an id
            select(Message)
            .where(
                Message.follow_up_id == follow_up_id,
                Message.direction == Direction.OUTBOUND,
                Message.provider_id.is_(None),
            )
            .order_by(Message.id.desc())
            .limit(1)
        )
    if message is None:
        log.warning("status %r for unknown message %s", status, provider_id)
        return None
    if not moves_forward(message.status, status):
        return message
    message.provider_id = provider_id
    message.status, message.status_updated_at = status, now
    if error_code:
        message.error_code = error_code
    follow_up = session.get(FollowUp, message.follow_up_id) if message.follow_up_id else None
    if follow_up is not None and by_sms_instead(message, follow_up.sale.customer):
        _by_sms_after_refusal(session, follow_up, message, error_code, now=now)
    elif follow_up is not None:
        _follow(follow_up, status, error_code, now)
        if reports_unsubscribed(error_code):
            stopped_by_provider(session, follow_up.sale.customer, now=now, actor="twilio")
    return message


def _by_sms_after_refusal(
    session: Session,
    follow_up: FollowUp,
    message: Message,
    error_code: str | None,
    *,
    now: datetime,
) -> None:
    """WhatsApp accepted a follow-up's free text, then refused it in a report (63016: the
    window had closed). The follow-up stays sent, never resent; its words go by SMS, queued on
    the protected path like any answer (a repeated report does not move the status forward,
    so it never comes here twice)."""
    customer = follow_up.sale.customer
    assert customer.phone is not None  # by_sms_instead: SMS is allowed
    follow_up.status_reason = f"WhatsApp refused it ({error_code}): sent by SMS instead"
    sms = queue(
        session,
        channel=Channel.SMS,
        to=customer.phone,
        subject=None,
        body=message.body,
        now=now,
        customer_id=customer.id,
    )
    sms.follow_up_id = follow_up.id


def stopped_by_provider(session: Session, customer: Customer, *, now: datetime, actor: str) -> None:
    """The provider refused a message because the customer told it to stop us (Twilio's STOP
    list): they are opted out of SMS here too."""
    opt_out(
        session,
        customer,
        channel=Channel.SMS,
        source=ConsentSource.PROVIDER_REFUSAL,
        via=TWILIO_21610,
        now=now,
        actor=actor,
    )


def _follow(follow_up: FollowUp, status: str, error_code: str | None, now: datetime) -> None:
    settled = (FollowUpStatus.SENT, FollowUpStatus.UNKNOWN)
    if status in DELIVERED and follow_up.status in settled:
        follow_up.move_to(FollowUpStatus.DELIVERED, None, now)
    elif status in UNDELIVERED and follow_up.status in settled:
        reason = f"the carrier reported {status}" + (f" (error {error_code})" if error_code else "")
        follow_up.move_to(FollowUpStatus.FAILED, reason, now)
    elif follow_up.status is FollowUpStatus.UNKNOWN:  # queued, sent: it did leave after all
        follow_up.move_to(FollowUpStatus.SENT, "the provider reported it", now)
    if follow_up.sent_at is None and follow_up.status is not FollowUpStatus.FAILED:
        follow_up.sent_at = now
