"""A shop's webhook delivery taken once: the order's sale recorded or cancelled, or the delivery
kept with its body for a person to read.

Shops deliver at least once and in no set order. Each delivery is written down under its id
(a retry finds it and changes nothing), and each order's deliveries take turns (PostgreSQL: an
advisory lock on the order; SQLite: its one writer). A cancellation that comes before the
payment is remembered, and the sale the payment then records is cancelled at once: no
follow-up is planned for an order the shop cancelled, and a later import of the shop's export
finds the sale and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.db import begin_writing, insert_or_else
from scheduler.lifecycle import DeliveryOutcome
from scheduler.models import Sale, ShopDelivery
from scheduler.sending.intake import Problem, validate_sale
from scheduler.sending.replanning import cancel_sale
from scheduler.sending.sales import record_sale
from scheduler.sending.shop_orders import (
    SHOPIFY,
    SHOPIFY_TOPICS,
    OrderAction,
    ShopOrder,
    ShopRefund,
    UnknownShape,
    external_id,
    order_id_of,
    refund_cancels,
    sale_fields,
    shopify_order,
    shopify_refund,
    woocommerce_action,
    woocommerce_order,
)

MAX_BODY = 256 * 1024  # characters of a refused body kept: a large order's whole JSON
WOOCOMMERCE_TOPICS = ("order.created", "order.updated")
# Why a sale's follow-ups ended, as its customer's page says it (web/domain_texts.py too).
CANCELLED_BY_SHOP = {
    (SHOPIFY, OrderAction.CANCEL): "Shopify cancelled the order",
    (SHOPIFY, OrderAction.REFUND): "Shopify refunded the order's main item",
    ("woocommerce", OrderAction.CANCEL): "WooCommerce cancelled or refunded the order",
}
CANCELLED_BEFORE_PAID = "the shop cancelled the order before it was paid"
NOT_JSON = object()  # the payload of a body that is not JSON (JSON's null is a payload too)


@dataclass(frozen=True)
class Delivery:
    """A signed delivery as it came: `body` is the raw text, `delivery_id` the shop's (None
    when it sent none)."""

    shop: str
    topic: str
    delivery_id: str | None
    body: str


@dataclass(frozen=True)
class Taken:
    """What came of a delivery; `repeat`: one already taken (nothing changed this time)."""

    outcome: DeliveryOutcome | None
    reason: str | None = None
    problems: tuple[Problem, ...] = ()
    sale_id: int | None = None
    repeat: bool = False


@dataclass(frozen=True)
class _Read:
    action: OrderAction
    order_id: str | None = None
    order: ShopOrder | None = None
    refund: ShopRefund | None = None
    refusal: UnknownShape | None = None
    why: str | None = None  # why nothing is done


def _read(delivery: Delivery, payload: Any) -> _Read:
    """The delivery's order and what it asks for, or why it cannot be read."""
    try:
        if delivery.shop == SHOPIFY:
            action = SHOPIFY_TOPICS.get(delivery.topic)
            if action is None:
                known = ", ".join(SHOPIFY_TOPICS)
                why = f"topic {delivery.topic!r} is not one Postventa acts on ({known})"
                return _Read(OrderAction.NOTHING, why=why)
            if action is OrderAction.REFUND:
                refund = shopify_refund(payload)
                return _Read(action, refund.order_id, refund=refund)
            if action is OrderAction.CANCEL:
                return _Read(action, order_id_of(payload))
            order = shopify_order(payload)
            return _Read(action, order.order_id, order=order)
        if delivery.topic not in WOOCOMMERCE_TOPICS:
            known = ", ".join(WOOCOMMERCE_TOPICS)
            why = f"topic {delivery.topic!r} is not one Postventa acts on ({known})"
            return _Read(OrderAction.NOTHING, why=why)
        order = woocommerce_order(payload)
        return _Read(woocommerce_action(order), order.order_id, order=order)
    except UnknownShape as refusal:
        return _Read(OrderAction.NOTHING, refusal=refusal)


def take_delivery(
    session: Session, delivery: Delivery, payload: Any, *, config: Config, now: datetime
) -> Taken:
    """Record, cancel or keep the delivery, once; the caller commits. `payload` is the parsed
    body, or NOT_JSON (refused, saying so)."""
    read = _unreadable() if payload is NOT_JSON else _read(delivery, payload)
    if read.action is OrderAction.NOTHING and read.order is not None:
        # Not final yet (pending, processing, on hold...): every edit of an order is a
        # delivery, and there is nothing to record or remember, so nothing is written down.
        return Taken(
            DeliveryOutcome.IGNORED, f"status {read.order.status}: recorded once completed"
        )
    begin_writing(session)
    if read.order_id is not None and session.get_bind().dialect.name == "postgresql":
        key = f"shop-order:{external_id(delivery.shop, read.order_id)}"
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
    row = _claim(session, delivery, read.order_id, now)
    if row is None:
        return Taken(None, repeat=True)
    taken = _act(session, delivery, read, config=config, now=now)
    row.outcome, row.reason, row.sale_id = taken.outcome or row.outcome, taken.reason, taken.sale_id
    if taken.outcome is DeliveryOutcome.REFUSED or (
        taken.outcome is DeliveryOutcome.IGNORED and read.refund is not None
    ):
        row.body = kept_body(delivery.body)
    return taken


def _unreadable() -> _Read:
    refusal = UnknownShape(None, "the body is not JSON: a shop sends its orders as JSON")
    return _Read(OrderAction.NOTHING, refusal=refusal)


def kept_body(body: str) -> str:
    """The body as stored: PostgreSQL text holds no NUL, and a huge one is cut, saying so."""
    body = body.replace("\x00", "\ufffd")
    if len(body) <= MAX_BODY:
        return body
    return body[:MAX_BODY] + f"\n[... cut: {len(body) - MAX_BODY} more characters]"


def _claim(
    session: Session, delivery: Delivery, order_id: str | None, now: datetime
) -> ShopDelivery | None:
    """The delivery written down, or None when its id was already (a retry, or the same
    delivery in parallel: PostgreSQL waits for the other's outcome at the unique index)."""
    statement = (
        insert_or_else(session, ShopDelivery)
        .values(
            shop=delivery.shop,
            delivery_id=delivery.delivery_id,
            topic=delivery.topic[:64],
            order_id=order_id,
            received_at=now,
            outcome=DeliveryOutcome.IGNORED,
        )
        .on_conflict_do_nothing()
        .returning(ShopDelivery.id)
    )
    new_id = session.scalar(statement)
    return None if new_id is None else session.get(ShopDelivery, new_id)


def _act(
    session: Session, delivery: Delivery, read: _Read, *, config: Config, now: datetime
) -> Taken:
    actor = f"webhook:{delivery.shop}"
    if read.refusal is not None:
        problem = (read.refusal.field or "body", read.refusal.message)
        return Taken(DeliveryOutcome.REFUSED, str(read.refusal), (problem,))
    if read.action is OrderAction.NOTHING or read.order_id is None:
        return Taken(DeliveryOutcome.IGNORED, read.why)
    sale = session.scalar(
        select(Sale)
        .where(Sale.external_id == external_id(delivery.shop, read.order_id))
        .with_for_update()
    )
    if read.action is OrderAction.RECORD:
        assert read.order is not None
        return _record(session, read.order, config=config, now=now, actor=actor)
    reason = CANCELLED_BY_SHOP[(delivery.shop, read.action)]
    if read.refund is not None:
        if sale is None:
            why = "no sale was recorded for this order: nothing to cancel"
            return Taken(DeliveryOutcome.IGNORED, why)
        if not refund_cancels(read.refund, sale.attributes, sale.amount):
            why = "a partial refund that leaves the main item: the follow-ups go on"
            return Taken(DeliveryOutcome.IGNORED, why, sale_id=sale.id)
    if sale is None:
        why = "no sale yet: remembered, so that a payment later plans nothing"
        return Taken(DeliveryOutcome.CANCELLED, why)
    cancelled = cancel_sale(session, sale, now=now, actor=actor, reason=reason)
    return Taken(DeliveryOutcome.CANCELLED, f"{reason}: {cancelled} follow-up(s)", sale_id=sale.id)


def _record(
    session: Session, order: ShopOrder, *, config: Config, now: datetime, actor: str
) -> Taken:
    checked = validate_sale(sale_fields(order), config, now=now)
    if isinstance(checked, list):
        reason = "; ".join(f"{field}: {message}" for field, message in checked)
        return Taken(DeliveryOutcome.REFUSED, reason, tuple(checked))
    sale, created = record_sale(session, checked, config=config, now=now, actor=actor)
    if not created:
        return Taken(DeliveryOutcome.RECORDED, "already recorded", sale_id=sale.id)
    if _cancelled_before(session, order):
        cancel_sale(session, sale, now=now, actor=actor, reason=CANCELLED_BEFORE_PAID)
        return Taken(DeliveryOutcome.RECORDED, CANCELLED_BEFORE_PAID, sale_id=sale.id)
    return Taken(DeliveryOutcome.RECORDED, sale_id=sale.id)


def _cancelled_before(session: Session, order: ShopOrder) -> bool:
    count = session.scalar(
        select(func.count()).where(
            ShopDelivery.shop == order.shop,
            ShopDelivery.order_id == order.order_id,
            ShopDelivery.outcome == DeliveryOutcome.CANCELLED,
            ShopDelivery.sale_id.is_(None),
        )
    )
    return bool(count)
