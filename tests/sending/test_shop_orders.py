"""Orders from the shops read into sales: one set of rules for webhooks and exports, without a
database."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from scheduler.config import defaults
from scheduler.sending.intake import validate_sale
from scheduler.sending.sales import SaleInput
from scheduler.sending.shop_orders import (
    LineItem,
    OrderAction,
    ShopOrder,
    UnknownShape,
    main_item,
    refund_cancels,
    sale_fields,
    shopify_order,
    shopify_refund,
    woocommerce_action,
    woocommerce_order,
)
from tests import shop_payloads as payloads
from tests.factories import NOW

CONFIG = defaults()


def sale(order: ShopOrder) -> SaleInput:
    checked = validate_sale(sale_fields(order), CONFIG, now=NOW)
    assert isinstance(checked, SaleInput), checked
    return checked


def test_a_shopify_order_becomes_a_sale_of_its_main_item() -> None:
    order = shopify_order(payloads.shopify_order())
    recorded = sale(order)
    assert recorded.external_id == "shopify:5123456789"
    assert (recorded.product_sku, recorded.product_name) == ("LAV-9", "Lavadora - Blanca / 9 kg")
    assert (recorded.amount, recorded.currency) == (Decimal("2049.00"), "PEN")
    assert recorded.customer_name == "Rosa Quispe" and recorded.locale == "es"
    assert recorded.phone == "+51987654321"  # the customer's, the order itself has none
    assert recorded.email == "rosa.quispe@example.pe"
    assert recorded.sold_at.isoformat() == "2026-11-23T14:30:00+00:00"
    assert recorded.attributes == {
        "shop": "shopify",
        "order_name": "#1001",
        "items": [
            {"sku": "BOLSA-1", "name": "Bolsa reutilizable", "quantity": 3, "unit_price": "5.00"},
            {
                "sku": "LAV-9",
                "name": "Lavadora - Blanca / 9 kg",
                "quantity": 1,
                "unit_price": "1899.00",
            },
            {"sku": None, "name": "Instalación", "quantity": 1, "unit_price": "135.00"},
        ],
    }


def test_a_language_postventa_does_not_speak_leaves_the_business_default() -> None:
    payload = payloads.shopify_order(customer_locale="fr-CA")
    assert sale(shopify_order(payload)).locale is None


def test_a_guest_checkout_in_another_currency_keeps_it() -> None:
    recorded = sale(shopify_order(payloads.shopify_guest_order()))
    assert recorded.customer_name == "John Smith"  # from the billing address
    assert (recorded.phone, recorded.email) == (None, "tourist@example.com")
    assert (recorded.amount, recorded.currency, recorded.locale) == (Decimal("520.00"), "USD", "en")


def test_a_woocommerce_order_with_billing_only() -> None:
    order = woocommerce_order(payloads.woocommerce_order())
    assert woocommerce_action(order) is OrderAction.RECORD
    recorded = sale(order)
    assert recorded.external_id == "woocommerce:1042"
    assert recorded.customer_name == "Lucía Mendoza" and recorded.phone == "+51959111222"
    assert recorded.sold_at.isoformat() == "2026-11-23T14:30:00+00:00"  # date_created_gmt
    assert (recorded.product_sku, recorded.amount) == ("REF-300", Decimal("1319.00"))
    assert recorded.attributes["order_name"] == "1042"
    assert recorded.attributes["items"][1] == {
        "sku": None,
        "name": "Imán decorativo",
        "quantity": 4,
        "unit_price": "0",
    }


@pytest.mark.parametrize(
    "status, action",
    [
        ("completed", OrderAction.RECORD),
        ("cancelled", OrderAction.CANCEL),
        ("refunded", OrderAction.CANCEL),
        ("processing", OrderAction.NOTHING),
        ("on-hold", OrderAction.NOTHING),
        ("pending", OrderAction.NOTHING),
        ("failed", OrderAction.NOTHING),
    ],
)
def test_only_final_woocommerce_statuses_act(status: str, action: OrderAction) -> None:
    assert (
        woocommerce_action(woocommerce_order(payloads.woocommerce_order(status=status))) is action
    )


def test_the_main_item_is_the_line_worth_most_the_first_on_a_tie() -> None:
    cheap = LineItem("A", "a", 10, "1.00")
    dear = LineItem("B", "b", 1, "10.00")
    unpriced = LineItem(None, "gift", 100, None)
    assert main_item([cheap, dear, unpriced]) == cheap
    assert main_item([dear, cheap]) == dear
    assert main_item([unpriced, LineItem("C", "c", 1, "0.01")]).sku == "C"  # type: ignore[union-attr]
    assert main_item([]) is None


def test_a_line_without_sku_names_the_product_but_makes_none() -> None:
    payload = payloads.shopify_order(
        line_items=[{"name": "Servicio técnico", "sku": "", "quantity": 1, "price": "80.00"}]
    )
    recorded = sale(shopify_order(payload))
    assert (recorded.product_sku, recorded.product_name) == (None, "Servicio técnico")


def test_a_customer_without_a_name_is_named_by_their_address() -> None:
    payload = payloads.shopify_order(customer=None, billing_address=None, shipping_address=None)
    assert sale(shopify_order(payload)).customer_name == "rosa.quispe@example.pe"


def test_a_long_product_title_is_cut_to_fit_not_refused() -> None:
    title = "Lavadora " + "x" * 300
    payload = payloads.shopify_order(
        line_items=[{"name": title, "sku": "LAV-9", "quantity": 1, "price": "1.00"}]
    )
    recorded = sale(shopify_order(payload))
    assert recorded.product_name == title[:200]
    assert recorded.attributes["items"][0]["name"] == title  # whole, where it is kept


def test_no_phone_and_no_email_is_refused_by_intake() -> None:
    payload = payloads.shopify_guest_order() | {"email": None, "contact_email": None}
    problems = validate_sale(sale_fields(shopify_order(payload)), CONFIG, now=NOW)
    assert problems == [("phone", "a phone or an email is required")]


@pytest.mark.parametrize(
    "payload, field",
    [
        ([1, 2], None),
        ("an order", None),
        ({}, "id"),
        ({"id": True}, "id"),
        ({"id": "12; DROP TABLE"}, "id"),
        ({"id": 1, "line_items": []}, "created_at"),
        ({"id": 1, "created_at": "2026-11-23T09:30:00Z"}, "line_items"),
        ({"id": 1, "created_at": "x", "line_items": [7]}, "line_items[0]"),
        ({"id": 1, "created_at": "x", "line_items": [{"name": "a"}]}, "line_items[0].quantity"),
        (
            {"id": 1, "created_at": "x", "line_items": [{"quantity": 1, "price": "1"}]},
            "line_items[0].name",
        ),
        ({"id": 1, "created_at": "x", "line_items": [], "customer": "Rosa"}, "customer"),
        ({"id": 1, "created_at": "x", "line_items": [], "email": ["a@b.pe"]}, "email"),
    ],
)
def test_what_is_not_a_shopify_order_says_where(payload: Any, field: str | None) -> None:
    with pytest.raises(UnknownShape) as refused:
        shopify_order(payload)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: " if field else "")


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"status": None}, "status"),
        ({"date_created_gmt": None, "date_created": None}, "date_created_gmt"),
        ({"billing": ["Lucía"]}, "billing"),
        ({"billing": {"email": {"x": 1}}}, "billing.email"),
        ({"line_items": [{"name": "a", "quantity": -1}]}, "line_items[0].quantity"),
        ({"line_items": [{"name": "a", "quantity": 1}] * 1001}, "line_items"),
        ({"line_items": [{"name": "a", "quantity": 10**100}]}, "line_items[0].quantity"),
        ({"line_items": [{"name": "a", "quantity": 1.5}]}, "line_items[0].quantity"),
    ],
)
def test_what_is_not_a_woocommerce_order_says_where(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(UnknownShape) as refused:
        woocommerce_order(payloads.woocommerce_order(**changes))
    assert refused.value.field == field


def test_a_refund_cancels_when_it_gives_back_the_main_item_or_everything() -> None:
    attributes = sale_fields(shopify_order(payloads.shopify_order()))["attributes"]
    total = Decimal("2049.00")
    main = shopify_refund(payloads.shopify_refund("LAV-9", amount="1899.00"))
    bags = shopify_refund(payloads.shopify_refund("BOLSA-1", amount="15.00"))
    shipping = shopify_refund(payloads.shopify_refund(amount="20.00"))
    everything = shopify_refund(payloads.shopify_refund(amount="2049.00"))
    assert main.order_id == "5123456789" and main.amount == Decimal("1899.00")
    assert refund_cancels(main, attributes, total)
    assert not refund_cancels(bags, attributes, total)
    assert not refund_cancels(shipping, attributes, total)
    assert refund_cancels(everything, attributes, total)
    assert not refund_cancels(main, {"store": "Miraflores"}, total)  # not a shop's sale


def test_a_refund_counts_only_money_that_went_back() -> None:
    payload = payloads.shopify_refund(amount="2049.00")
    payload["transactions"] = [
        {"kind": "refund", "status": "failure", "amount": "2049.00"},
        {"kind": "sale", "status": "success", "amount": "2049.00"},
        {"kind": "refund", "status": "success", "amount": "NaN"},
        "junk",
    ]
    assert shopify_refund(payload).amount == 0
