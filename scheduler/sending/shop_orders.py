"""A shop's order as Shopify and WooCommerce describe it (webhooks and exports alike), and the
raw sale it becomes.

The rules are fixed once, here, for every way an order comes in, so that a shop's export
imported after its webhooks changes nothing: the external id is `shop:order id`; the sale's
product is the order's main item (the line worth most, the first on a tie); the amount and
currency are the order's, as given; every item is kept in the sale's attributes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from scheduler.config import LOCALES
from scheduler.sending.intake import MAX_LENGTHS

SHOPIFY = "shopify"
WOOCOMMERCE = "woocommerce"
MAX_ITEMS = 1000  # Shopify's own limit on an order is far below; more is not an order
MAX_QUANTITY = 1_000_000


class UnknownShape(ValueError):
    """A body that is not a shop's order: `field` names where (None: the whole body)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class LineItem:
    sku: str | None
    name: str
    quantity: int
    unit_price: str | None  # as the shop wrote it ("1899.00")


@dataclass(frozen=True)
class ShopOrder:
    shop: str  # "shopify" | "woocommerce"
    order_id: str  # the shop's id, unique within the shop
    name: str | None  # what the shop shows: Shopify "#1001", WooCommerce's order number
    placed_at: str  # ISO 8601 text, as intake reads it (no offset: the business's time)
    customer_name: str | None  # None for a guest who gave no name (`sale_fields` falls back)
    phone: str | None
    email: str | None
    currency: str | None
    total: str | None
    items: tuple[LineItem, ...]
    status: str | None = None  # the shop's word for where the order is (WooCommerce's status)
    locale: str | None = None  # the customer's language, when the shop knows it ("es", "en")


@dataclass(frozen=True)
class ShopRefund:
    """Money or items given back on an order: `items` are the lines refunded (none: an amount
    alone, such as shipping), `amount` the money returned by it."""

    shop: str
    order_id: str
    items: tuple[LineItem, ...]
    amount: Decimal


def external_id(shop: str, order_id: str) -> str:
    return f"{shop}:{order_id}"


def _worth(item: LineItem) -> Decimal:
    try:
        price = Decimal(item.unit_price or "0")
    except InvalidOperation:
        return Decimal(0)
    return price * item.quantity if price.is_finite() else Decimal(0)


def main_item(items: Sequence[LineItem]) -> LineItem | None:
    """The line with the largest quantity x unit price, the first on a tie: what the customer
    bought, rather than the bag or the delivery that came with it."""
    best: LineItem | None = None
    most = Decimal(0)
    for item in items:
        worth = _worth(item)  # once an item, not again for the best at each comparison
        if best is None or worth > most:
            best, most = item, worth
    return best


def _clip(text: str | None, field: str) -> str | None:
    """A name cut to its column: a long product title is no reason to refuse a sale (the whole
    of it stays in the attributes)."""
    return text[: MAX_LENGTHS[field]] if text else text


def sale_fields(order: ShopOrder) -> dict[str, Any]:
    """The raw sale that `intake.validate_sale` checks, for any order from a shop."""
    main = main_item(order.items)
    return {
        "external_id": external_id(order.shop, order.order_id),
        "sold_at": order.placed_at,
        # A sale needs a name: a guest without one goes by the email or phone they gave.
        "customer_name": _clip(
            _first(order.customer_name, order.email, order.phone), "customer_name"
        ),
        "phone": order.phone,
        "email": order.email,
        "locale": order.locale,
        "product_sku": main.sku if main else None,
        "product_name": _clip(main.name, "product_name") if main else None,
        "amount": order.total,
        "currency": order.currency,
        "attributes": {
            "shop": order.shop,
            "order_name": order.name,
            "items": [
                {"sku": i.sku, "name": i.name, "quantity": i.quantity, "unit_price": i.unit_price}
                for i in order.items
            ],
        },
    }


def refund_cancels(
    refund: ShopRefund, attributes: Mapping[str, Any], amount: Decimal | None
) -> bool:
    """Whether a refund ends the follow-ups of the sale recorded with these attributes and
    amount: when it gives back the main item (what the follow-ups ask about) or the whole
    amount. A refund of an accessory, of shipping or of part of the money leaves them: the
    customer still has what they bought."""
    if amount is not None and amount > 0 and refund.amount >= amount:
        return True
    kept = attributes.get("items")
    try:
        main = main_item([LineItem(**item) for item in kept]) if isinstance(kept, list) else None
    except TypeError:  # attributes that did not come from a shop
        return False
    if main is None:
        return False
    if main.sku:
        return any(item.sku == main.sku for item in refund.items)
    return any(not item.sku and item.name == main.name for item in refund.items)


# --- reading the shops' payloads --------------------------------------------------------------


def _object(value: Any, field: str | None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UnknownShape(field, f"{'the body ' if field is None else ''}must be a JSON object")
    return value


def _optional_object(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A nested object that may be absent or null (a guest checkout has no customer)."""
    value = payload.get(key)
    return {} if value is None else _object(value, key)


def _id(payload: Mapping[str, Any], key: str = "id") -> str:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise UnknownShape(key, "is required: the shop's order id (a number)")
    text = str(value).strip()
    if not re.fullmatch(r"[0-9A-Za-z_-]{1,60}", text):
        raise UnknownShape(key, f"{text[:60]!r} is not an order id")
    return text


def _text(payload: Mapping[str, Any], key: str, field: str | None = None) -> str | None:
    """Stripped text, None when absent, null or blank; anything else is not this shape."""
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise UnknownShape(field or key, "must be text")
    return str(value).strip() or None


def _money(payload: Mapping[str, Any], key: str, field: str) -> str | None:
    """An amount as the shop wrote it; WooCommerce's unit `price` is a JSON number."""
    value = payload.get(key)
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    return _text(payload, key, field)


def _person(*sources: Mapping[str, Any]) -> str | None:
    """A name from the first of `sources` that has one: its first and last name, or `name`."""
    for source in sources:
        parts = [_text(source, key) for key in ("first_name", "last_name")]
        name = " ".join(part for part in parts if part) or _text(source, "name")
        if name:
            return name
    return None


def _first(*values: str | None) -> str | None:
    return next((value for value in values if value), None)


def _items(payload: Mapping[str, Any]) -> tuple[LineItem, ...]:
    lines = payload.get("line_items")
    if not isinstance(lines, list):
        raise UnknownShape("line_items", "is required: a list of the order's items")
    if len(lines) > MAX_ITEMS:
        raise UnknownShape("line_items", f"has more than {MAX_ITEMS} items")
    items = []
    for index, line in enumerate(lines):
        where = f"line_items[{index}]"
        line = _object(line, where)
        quantity = line.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            quantity = -1
        if not 0 <= quantity <= MAX_QUANTITY:
            message = f"must be a whole number from 0 to {MAX_QUANTITY}"
            raise UnknownShape(f"{where}.quantity", message)
        name = _first(_text(line, "name", f"{where}.name"), _text(line, "title", f"{where}.title"))
        sku = _text(line, "sku", f"{where}.sku")
        if not (name or sku):
            raise UnknownShape(f"{where}.name", "is required: what was sold")
        items.append(
            LineItem(sku, name or sku or "", quantity, _money(line, "price", f"{where}.price"))
        )
    return tuple(items)


def _locale(text: str | None) -> str | None:
    """The language of "es-PE" or "en", when Postventa speaks it; else the business's own (a
    French customer's order is still a sale)."""
    language = text.replace("_", "-").split("-")[0].lower() if text else None
    return language if language in LOCALES else None


def order_id_of(payload: Any) -> str:
    """The order's id alone: all that a cancellation needs."""
    return _id(_object(payload, None))


def shopify_order(payload: Any) -> ShopOrder:
    """An order from Shopify's `orders/paid` or `orders/cancelled` (the REST Order resource)."""
    order = _object(payload, None)
    order_id = _id(order)
    placed_at = _first(_text(order, "created_at"), _text(order, "processed_at"))
    if placed_at is None:
        raise UnknownShape("created_at", "is required: when the order was placed")
    customer = _optional_object(order, "customer")
    billing = _optional_object(order, "billing_address")
    shipping = _optional_object(order, "shipping_address")
    email = _first(_text(order, "email"), _text(order, "contact_email"), _text(customer, "email"))
    phone = _first(*(_text(source, "phone") for source in (order, customer, billing, shipping)))
    return ShopOrder(
        shop=SHOPIFY,
        order_id=order_id,
        name=_text(order, "name"),
        placed_at=placed_at,
        customer_name=_person(customer, billing, shipping),
        phone=phone,
        email=email,
        currency=_text(order, "currency"),
        total=_money(order, "total_price", "total_price"),
        items=_items(order),
        status=_text(order, "financial_status"),
        locale=_locale(_text(order, "customer_locale")),
    )


def shopify_refund(payload: Any) -> ShopRefund:
    """A refund from Shopify's `refunds/create`: the lines it gives back, with the order's id."""
    refund = _object(payload, None)
    order_id = _id(refund, "order_id")
    lines = refund.get("refund_line_items") or []
    if not isinstance(lines, list):
        raise UnknownShape("refund_line_items", "must be a list")
    items = []
    for index, line in enumerate(lines[:MAX_ITEMS]):
        where = f"refund_line_items[{index}]"
        item = _object(_object(line, where).get("line_item"), f"{where}.line_item")
        name = _first(_text(item, "name"), _text(item, "title"), _text(item, "sku")) or ""
        quantity = line.get("quantity")
        quantity = quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 0
        items.append(LineItem(_text(item, "sku"), name, quantity, _money(item, "price", where)))
    return ShopRefund(SHOPIFY, order_id, tuple(items), _refunded(refund.get("transactions")))


def _refunded(transactions: Any) -> Decimal:
    """The money a refund's successful transactions gave back; what cannot be read counts 0
    (the refund then cancels only by its items)."""
    total = Decimal(0)
    for transaction in transactions if isinstance(transactions, list) else []:
        if not isinstance(transaction, Mapping) or transaction.get("kind") != "refund":
            continue
        if transaction.get("status") not in (None, "success"):
            continue
        try:
            amount = Decimal(str(transaction.get("amount")))
        except InvalidOperation:
            continue
        if amount.is_finite() and amount > 0:
            total += amount
    return total


def woocommerce_order(payload: Any) -> ShopOrder:
    """An order from WooCommerce's `order.created` / `order.updated` (REST API v3 order)."""
    order = _object(payload, None)
    order_id = _id(order)
    status = _text(order, "status")
    if status is None:
        raise UnknownShape("status", "is required: where the order is (completed, ...)")
    gmt = _text(order, "date_created_gmt")  # UTC, written without an offset
    placed_at = f"{gmt}+00:00" if gmt and not gmt.endswith(("Z", "+00:00")) else gmt
    placed_at = placed_at or _text(order, "date_created")  # the site's time
    if placed_at is None:
        raise UnknownShape("date_created_gmt", "is required: when the order was placed")
    billing = _optional_object(order, "billing")
    shipping = _optional_object(order, "shipping")
    email = _text(billing, "email", "billing.email")
    phone = _first(_text(billing, "phone", "billing.phone"), _text(shipping, "phone"))
    return ShopOrder(
        shop=WOOCOMMERCE,
        order_id=order_id,
        name=_text(order, "number"),
        placed_at=placed_at,
        customer_name=_person(billing, shipping),
        phone=phone,
        email=email,
        currency=_text(order, "currency"),
        total=_money(order, "total", "total"),
        items=_items(order),
        status=status.lower(),
    )


class OrderAction(StrEnum):
    """What an order's news does to its sale."""

    RECORD = "record"  # paid, or done: the sale and its follow-ups
    CANCEL = "cancel"  # cancelled or wholly refunded: its pending follow-ups end
    REFUND = "refund"  # money given back: cancels when it is the main item (`refund_cancels`)
    NOTHING = "nothing"  # not final yet (pending, processing, on hold...)


SHOPIFY_TOPICS = {
    "orders/paid": OrderAction.RECORD,
    "orders/cancelled": OrderAction.CANCEL,
    "refunds/create": OrderAction.REFUND,
}
# WooCommerce refunds in full by setting the status; a partial refund leaves it as it was.
WOOCOMMERCE_STATUSES = {
    "completed": OrderAction.RECORD,
    "cancelled": OrderAction.CANCEL,
    "refunded": OrderAction.CANCEL,
}


def woocommerce_action(order: ShopOrder) -> OrderAction:
    return WOOCOMMERCE_STATUSES.get(order.status or "", OrderAction.NOTHING)
