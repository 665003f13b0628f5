"""Everything the shop holds about one customer, for the customer who asks for it (GDPR
article 15 in Spain, Ley 29733's right of access in Peru): who they are and what they agreed
to, their sales and what we planned after each, every message both ways, their cases with the
notes and remedies, and the history of changes about them.

Plain data in, plain data out: `export` returns a JSON-ready dict, which the command line
writes as it is, and the web layer shows as a page in the customer's language
(`web.customer_data.page`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from scheduler import audit
from scheduler.erasure import their_messages
from scheduler.lifecycle import Channel
from scheduler.models import (
    AuditEntry,
    Case,
    Customer,
    FollowUp,
    Message,
    Sale,
)

FORMAT = 1  # the export's own version: a later one adds keys, never renames them
CONSENT_ACTIONS = ("customer.opt_out", "customer.opt_in", "customer.email_bounced")


class NoSuchCustomer(LookupError):
    pass


def plain(value: Any) -> Any:
    """A value as JSON writes it: times in ISO 8601 (UTC), amounts as text, enums by value."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def _consent(customer: Customer) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    for channel in Channel:
        at = customer.opt_out_at(channel)
        channels[channel.value] = {
            "opted_out_at": at,
            "how": customer.opt_out_via(channel),
            "source": customer.opt_out_source(channel),
        }
    channels[Channel.WHATSAPP.value] |= {
        "said_yes_at": customer.whatsapp_opt_in_at,
        "said_yes_how": customer.whatsapp_opt_in_via,
    }
    return channels


def export(session: Session, customer_id: int, *, now: datetime) -> dict[str, Any]:
    """Everything about the customer; NoSuchCustomer for an id nobody has."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NoSuchCustomer(f"no customer {customer_id}")
    sales = session.scalars(
        select(Sale)
        .where(Sale.customer_id == customer_id)
        .options(
            selectinload(Sale.product),
            selectinload(Sale.follow_ups).selectinload(FollowUp.step),
        )
        .order_by(Sale.sold_at, Sale.id)
    ).all()
    # Theirs both ways, a reply nobody matched to them yet, and the notices about their cases.
    messages = session.scalars(
        select(Message).where(their_messages(customer)).order_by(Message.created_at, Message.id)
    ).all()
    cases = session.scalars(
        select(Case)
        .where(Case.customer_id == customer_id)
        .options(selectinload(Case.notes), selectinload(Case.remedies))
        .order_by(Case.opened_at, Case.id)
    ).all()
    about = [
        ("customer", [customer_id]),
        ("sale", [sale.id for sale in sales]),
        ("case", [case.id for case in cases]),
        ("follow_up", [row.id for sale in sales for row in sale.follow_ups]),
        ("message", [message.id for message in messages]),
    ]
    history = session.scalars(
        select(AuditEntry)
        .where(
            or_(
                *(
                    (AuditEntry.entity_type == kind) & AuditEntry.entity_id.in_(ids)
                    for kind, ids in about
                    if ids
                )
            )
        )
        .order_by(AuditEntry.at, AuditEntry.id)
    ).all()
    everything: dict[str, Any] = plain(
        {
            "format": FORMAT,
            "exported_at": now,
            "customer": {
                "id": customer.id,
                "name": customer.name,
                "phone": customer.phone,
                "email": customer.email,
                "language": customer.locale,
                "time_zone": customer.timezone,
                "since": customer.created_at,
                "email_bounced_at": customer.email_bounced_at,
                "email_bounce_reason": customer.email_bounce_reason,
            },
            "consent": _consent(customer),
            "consent_history": [
                {"at": e.at, "what": e.action, "by": e.actor, "details": e.details}
                for e in history
                if e.action in CONSENT_ACTIONS
            ],
            "sales": [
                {
                    "order": sale.external_id,
                    "sold_at": sale.sold_at,
                    "product": (
                        {"sku": sale.product.sku, "name": sale.product.name}
                        if sale.product
                        else None
                    ),
                    "amount": sale.amount,
                    "currency": sale.currency,
                    "status": sale.status,
                    "cancelled_at": sale.cancelled_at,
                    "details": sale.attributes,
                    "follow_ups": [
                        {
                            "step": row.step.key,
                            "channel": row.channel,
                            "due_at": row.due_at,
                            "status": row.status,
                            "why": row.status_reason,
                            "sent_at": row.sent_at,
                        }
                        for row in sorted(sale.follow_ups, key=lambda f: (f.due_at, f.id))
                    ],
                }
                for sale in sales
            ],
            "messages": [
                {
                    "at": m.created_at,
                    "direction": m.direction,
                    "channel": m.channel,
                    "from": m.from_address,
                    "to": m.to_address,
                    "subject": m.subject,
                    "body": m.body,
                    "status": m.status,
                    "case": m.case_id,
                    "read_as": m.label,
                    "score": m.score,
                    "themes": m.themes,
                }
                for m in messages
            ],
            "cases": [
                {
                    "id": case.id,
                    "status": case.status,
                    "reason": case.reason,
                    "opened_at": case.opened_at,
                    "first_answer_due_at": case.first_response_due_at,
                    "first_answered_at": case.first_responded_at,
                    "resolved_at": case.resolved_at,
                    "outcome": case.outcome,
                    "notes": [{"at": n.created_at, "text": n.body} for n in case.notes],
                    "remedies": [
                        {
                            "kind": r.kind,
                            "description": r.description,
                            "value": r.value,
                            "status": r.status,
                            "at": r.created_at,
                            "decided_at": r.decided_at,
                        }
                        for r in case.remedies
                    ],
                }
                for case in cases
            ],
            "history": [
                {"at": e.at, "what": e.action, "by": e.actor, "details": e.details} for e in history
            ],
        }
    )
    return everything


def record_export(session: Session, customer_id: int, *, actor: str, now: datetime) -> None:
    """An export is in the audit log: who took a copy of someone's data, and when."""
    audit.record(
        session,
        at=now,
        actor=actor,
        action="customer.export",
        entity_type="customer",
        entity_id=customer_id,
    )
