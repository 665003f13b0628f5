"""Small builders of valid input, so that each test states only what it is about."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from scheduler.lifecycle import Channel, Direction
from scheduler.models import Message
from scheduler.sending.sales import SaleInput

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in Lima
SHOP_NUMBER = "+15005550006"  # the shop's Twilio number, which customers write to


def sale_input(external_id: str = "S-1", **changes: object) -> SaleInput:
    """A sale by Rosa (phone only) of a washing machine at NOW, with `changes` applied."""
    fields: dict[str, object] = {
        "external_id": external_id,
        "sold_at": NOW,
        "customer_name": "Rosa Quispe",
        "phone": "+51987654321",
        "product_sku": "LAV-9",
        "product_name": "Lavadora",
        "amount": Decimal("1899.00"),
        "currency": "PEN",
        "attributes": {"store": "Miraflores"},
    }
    fields.update(changes)
    return SaleInput(**fields)  # type: ignore[arg-type]


def raw(**changes: Any) -> dict[str, Any]:
    """A valid raw sale, as a CSV row would give it, with `changes` applied."""
    fields: dict[str, Any] = {
        "external_id": "S-1",
        "sold_at": "2026-11-23T09:30:00",
        "customer_name": "Rosa Quispe",
        "phone": "987 654 321",
        "email": "",
        "locale": "",
        "timezone": "",
        "product_sku": "LAV-9",
        "product_name": "Lavadora",
        "amount": "1899.90",
        "currency": "PEN",
    }
    fields.update(changes)
    return fields


def outbound_sms(body: str, at: datetime, *, to: str = "+51987654321", **fields: Any) -> Message:
    """An SMS the shop sent from its number (stored by the outbox transport), with `fields`
    (customer, status, another channel...) set."""
    given: dict[str, Any] = {"channel": Channel.SMS, "status": "stored"} | fields
    return Message(
        direction=Direction.OUTBOUND,
        from_address=SHOP_NUMBER,
        to_address=to,
        body=body,
        created_at=at,
        **given,
    )


def inbound_sms(body: str, at: datetime, *, sender: str = "+51987654321", **fields: Any) -> Message:
    """A customer's SMS as the webhook stores it (received, to the shop's number), with
    `fields` (customer, follow-up, how it was read, another channel...) set."""
    given: dict[str, Any] = {"channel": Channel.SMS, "to_address": SHOP_NUMBER} | fields
    return Message(
        direction=Direction.INBOUND,
        from_address=sender,
        body=body,
        status="received",
        created_at=at,
        **given,
    )
