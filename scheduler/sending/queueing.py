"""Writing a message down for the worker to send on its own, within seconds: a person's reply,
an acknowledgement, a notice to staff, the SMS instead of a WhatsApp message refused after it
was sent. The first step of their protected path; `queued.QueuedSender` takes them from here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from scheduler.lifecycle import Channel, Direction, MessageStatus
from scheduler.models import Message
from scheduler.sending.segments import sms_size


def queue(
    session: Session,
    *,
    channel: Channel,
    to: str,
    subject: str | None,
    body: str,
    now: datetime,
    case_id: int | None = None,
    customer_id: int | None = None,
) -> Message:
    """Write a message down for the worker to send within seconds: a notice to staff, or, with
    the customer's id, a message to the customer (part of the case's conversation)."""
    size = sms_size(body) if channel is Channel.SMS else None
    message = Message(
        customer_id=customer_id,
        case_id=case_id,
        direction=Direction.OUTBOUND,
        channel=channel,
        from_address="",
        to_address=to,
        subject=subject,
        body=body,
        segments=size.segments if size else None,
        encoding=size.encoding if size else None,
        status=MessageStatus.PREPARED,
        created_at=now,
        status_updated_at=now,
        due_at=now,
    )
    session.add(message)
    return message
