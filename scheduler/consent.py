"""A customer's consent per channel: opting out and back in, and what that does at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.lifecycle import PENDING, Channel, ConsentSource, FollowUpStatus
from scheduler.models import Customer, FollowUp


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
    """Record the opt-out (when, where from, and in words how), and skip the customer's pending
    follow-ups on that channel at once, not at their send time; returns how many were skipped.
    Idempotent: the first opt-out's time, source and wording are kept. Every opt-out, from
    wherever it comes, goes through here."""
    _lock(session, customer)
    if channel is Channel.SMS:
        if customer.sms_opt_out_at is not None:
            return 0
        customer.sms_opt_out_at, customer.sms_opt_out_via = now, via
        customer.sms_opt_out_source = source
    else:
        if customer.email_opt_out_at is not None:
            return 0
        customer.email_opt_out_at, customer.email_opt_out_via = now, via
        customer.email_opt_out_source = source
    pending = session.scalars(
        select(FollowUp)
        .where(
            FollowUp.customer_id == customer.id,
            FollowUp.channel == channel,
            FollowUp.status.in_(PENDING),
        )
        .with_for_update()
    ).all()
    for row in pending:
        row.move_to(FollowUpStatus.SKIPPED, f"the customer opted out ({via})", now)
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
    )
    return len(pending)


def opt_in(
    session: Session, customer: Customer, *, channel: Channel, via: str, now: datetime, actor: str
) -> bool:
    """Clear an opt-out; returns whether there was one. Follow-ups skipped meanwhile stay
    skipped: their moment has passed."""
    _lock(session, customer)
    if channel is Channel.SMS:
        if customer.sms_opt_out_at is None:
            return False
        customer.sms_opt_out_at = customer.sms_opt_out_via = customer.sms_opt_out_source = None
    else:
        if customer.email_opt_out_at is None:
            return False
        customer.email_opt_out_at = customer.email_opt_out_via = None
        customer.email_opt_out_source = None
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
