"""Orders as Shopify and WooCommerce deliver them, written for the tests after the shapes of
Shopify's REST Order and Refund resources and WooCommerce's REST API v3 order (trimmed of the
fields Postventa does not read, but with enough of the rest to look like the real thing), and
signed deliveries of them to the app."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from web.shop_webhooks import signature

SHOPIFY_SECRET = "shpss_0123456789abcdef0123456789abcdef"
WOOCOMMERCE_SECRET = "wc-secret: Tienda Online 2026"
SECRETS = {"shopify": SHOPIFY_SECRET, "woocommerce": WOOCOMMERCE_SECRET}

_SHOPIFY_ORDER: dict[str, Any] = {
    "id": 5123456789,
    "admin_graphql_api_id": "gid://shopify/Order/5123456789",
    "name": "#1001",
    "order_number": 1001,
    "created_at": "2026-11-23T09:30:00-05:00",
    "processed_at": "2026-11-23T09:30:02-05:00",
    "updated_at": "2026-11-23T09:31:10-05:00",
    "cancelled_at": None,
    "cancel_reason": None,
    "currency": "PEN",
    "presentment_currency": "PEN",
    "financial_status": "paid",
    "fulfillment_status": None,
    "email": "rosa.quispe@example.pe",
    "contact_email": "rosa.quispe@example.pe",
    "phone": None,
    "customer_locale": "es-PE",
    "subtotal_price": "2049.00",
    "total_tax": "312.56",
    "total_price": "2049.00",
    "tags": "",
    "note": None,
    "customer": {
        "id": 7012345678,
        "email": "rosa.quispe@example.pe",
        "first_name": "Rosa",
        "last_name": "Quispe",
        "phone": "+51987654321",
        "state": "enabled",
        "default_address": {"city": "Lima", "country_code": "PE"},
    },
    "billing_address": {
        "first_name": "Rosa",
        "last_name": "Quispe",
        "name": "Rosa Quispe",
        "address1": "Av. Larco 345",
        "city": "Miraflores",
        "country_code": "PE",
        "phone": "987 654 321",
    },
    "shipping_address": {
        "first_name": "Rosa",
        "last_name": "Quispe",
        "name": "Rosa Quispe",
        "address1": "Av. Larco 345",
        "city": "Miraflores",
        "country_code": "PE",
        "phone": None,
    },
    "line_items": [
        {
            "id": 13012345601,
            "variant_id": 44012345601,
            "product_id": 8012345601,
            "title": "Bolsa reutilizable",
            "name": "Bolsa reutilizable",
            "sku": "BOLSA-1",
            "quantity": 3,
            "price": "5.00",
            "total_discount": "0.00",
            "requires_shipping": True,
        },
        {
            "id": 13012345602,
            "variant_id": 44012345602,
            "product_id": 8012345602,
            "title": "Lavadora",
            "name": "Lavadora - Blanca / 9 kg",
            "sku": "LAV-9",
            "quantity": 1,
            "price": "1899.00",
            "total_discount": "0.00",
            "requires_shipping": True,
        },
        {
            "id": 13012345603,
            "variant_id": None,
            "product_id": None,
            "title": "Instalación",
            "name": "Instalación",
            "sku": None,
            "quantity": 1,
            "price": "135.00",
            "total_discount": "0.00",
            "requires_shipping": False,
        },
    ],
    "refunds": [],
}


def shopify_order(**changes: Any) -> dict[str, Any]:
    """Rosa's paid order #1001: a washing machine, three bags and its installation."""
    order = copy.deepcopy(_SHOPIFY_ORDER)
    order.update(changes)
    return order


def shopify_guest_order() -> dict[str, Any]:
    """A guest checkout paid in dollars: no customer object, the name on the billing address,
    an email and no phone anywhere."""
    return shopify_order(
        id=5123456790,
        name="#1002",
        customer=None,
        email="tourist@example.com",
        contact_email="tourist@example.com",
        currency="USD",
        presentment_currency="USD",
        total_price="520.00",
        customer_locale="en",
        billing_address={"first_name": "John", "last_name": "Smith", "phone": None},
        shipping_address=None,
        line_items=[
            {
                "id": 13012345701,
                "title": "Cafetera",
                "name": "Cafetera",
                "sku": "CAF-2",
                "quantity": 2,
                "price": "260.00",
            }
        ],
    )


def shopify_refund(*skus: str | None, amount: str = "0.00") -> dict[str, Any]:
    """A refunds/create for order #1001 giving back the lines with these SKUs."""
    lines = [line for line in _SHOPIFY_ORDER["line_items"] if line["sku"] in skus]
    return {
        "id": 929361464,
        "order_id": _SHOPIFY_ORDER["id"],
        "created_at": "2026-11-23T12:00:00-05:00",
        "note": "el cliente cambió de opinión",
        "restock": True,
        "refund_line_items": [
            {
                "id": 104689539 + index,
                "line_item_id": line["id"],
                "quantity": line["quantity"],
                "restock_type": "return",
                "subtotal": line["price"],
                "line_item": copy.deepcopy(line),
            }
            for index, line in enumerate(lines)
        ],
        "transactions": [
            {"id": 179259969, "kind": "refund", "status": "success", "amount": amount}
        ],
        "order_adjustments": [],
    }


_WOOCOMMERCE_ORDER: dict[str, Any] = {
    "id": 1042,
    "parent_id": 0,
    "number": "1042",
    "order_key": "wc_order_58d2d042d1d",
    "created_via": "checkout",
    "version": "9.4.2",
    "status": "completed",
    "currency": "PEN",
    "date_created": "2026-11-23T09:30:00",
    "date_created_gmt": "2026-11-23T14:30:00",
    "date_modified": "2026-11-23T10:05:00",
    "date_modified_gmt": "2026-11-23T15:05:00",
    "discount_total": "0.00",
    "shipping_total": "20.00",
    "total": "1319.00",
    "total_tax": "201.20",
    "prices_include_tax": True,
    "customer_id": 0,
    "customer_note": "",
    "billing": {
        "first_name": "Lucía",
        "last_name": "Mendoza",
        "company": "",
        "address_1": "Jr. Cusco 120",
        "city": "Arequipa",
        "state": "ARE",
        "postcode": "04001",
        "country": "PE",
        "email": "lucia.mendoza@example.pe",
        "phone": "959 111 222",
    },
    "shipping": {
        "first_name": "",
        "last_name": "",
        "company": "",
        "address_1": "",
        "city": "",
        "country": "",
        "phone": "",
    },
    "payment_method": "bacs",
    "payment_method_title": "Transferencia bancaria",
    "date_paid": "2026-11-23T09:31:00",
    "date_completed": "2026-11-23T10:05:00",
    "line_items": [
        {
            "id": 315,
            "name": "Refrigeradora 300 L",
            "product_id": 93,
            "variation_id": 0,
            "quantity": 1,
            "subtotal": "1299.00",
            "total": "1299.00",
            "sku": "REF-300",
            "price": 1299,
        },
        {
            "id": 316,
            "name": "Imán decorativo",
            "product_id": 94,
            "variation_id": 0,
            "quantity": 4,
            "subtotal": "0.00",
            "total": "0.00",
            "sku": "",
            "price": 0,
        },
    ],
    "shipping_lines": [{"id": 317, "method_title": "Envío", "total": "20.00"}],
    "refunds": [],
}


def woocommerce_order(**changes: Any) -> dict[str, Any]:
    """Lucía's order 1042, a guest with billing details only (no customer account, an empty
    shipping address): a fridge and four free magnets."""
    order = copy.deepcopy(_WOOCOMMERCE_ORDER)
    order.update(changes)
    return order


def deliver(
    client: FlaskClient,
    shop: str,
    payload: Any,
    *,
    topic: str | None = None,
    delivery_id: str | None = "auto",
    secret: str | None = None,
    body: bytes | None = None,
) -> TestResponse:
    """POST `payload` (or the raw `body`) to the shop's endpoint as the shop signs it: on
    `topic` (None: orders/paid or order.updated; "": the header left out), with a delivery
    id made from the body and topic unless given (None: the header left out)."""
    raw = body if body is not None else json.dumps(payload).encode()
    sign = signature(raw, secret if secret is not None else SECRETS[shop])
    if shop == "shopify":
        headers = {"X-Shopify-Hmac-Sha256": sign, "X-Shopify-Shop-Domain": "mi-tienda.pe"}
        topic_header, id_header = "X-Shopify-Topic", "X-Shopify-Webhook-Id"
        topic = "orders/paid" if topic is None else topic
    else:
        headers = {"X-WC-Webhook-Signature": sign, "X-WC-Webhook-Source": "https://tienda.pe/"}
        topic_header, id_header = "X-WC-Webhook-Topic", "X-WC-Webhook-Delivery-ID"
        topic = "order.updated" if topic is None else topic
    if topic:
        headers[topic_header] = topic
    if delivery_id == "auto":
        delivery_id = f"{hashlib.sha256(raw).hexdigest()[:32]}-{topic}"
    if delivery_id is not None:
        headers[id_header] = delivery_id
    return client.post(
        f"/webhooks/{shop}/orders", data=raw, headers=headers, content_type="application/json"
    )
