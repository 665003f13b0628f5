"""`differences`: what a sale sent again under a recorded external id says otherwise (the API's
409, and the CSV import's rejected row). A plain function over the rows: no database here."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from scheduler.models import Customer, Product, Sale
from scheduler.sending.sales import differences
from tests.factories import NOW, sale_input


def recorded(**customer: str | None) -> Sale:
    """S-1 as `sale_input()` records it: Rosa's phone, LAV-9, 1899.00 PEN at NOW."""
    person = Customer(name="Rosa Quispe", phone="+51987654321", email=None)
    for key, value in customer.items():
        setattr(person, key, value)
    return Sale(
        external_id="S-1",
        customer=person,
        product=Product(sku="LAV-9", name="Lavadora"),
        sold_at=NOW,
        amount=Decimal("1899.00"),
        currency="PEN",
    )


def test_the_same_sale_spelled_otherwise_differs_in_nothing() -> None:
    same = sale_input(
        customer_name="ROSA",
        product_name="Otra",
        amount=Decimal("1899"),
        attributes={"store": "Surco"},
        locale="en",
    )
    assert differences(recorded(), same) == []


def test_each_field_that_makes_the_sale_is_compared() -> None:
    other = sale_input(
        sold_at=NOW + timedelta(minutes=1),
        phone="+51987654322",
        product_sku="LAV-10",
        amount=Decimal("1.00"),
        currency="USD",
    )
    assert differences(recorded(), other) == [
        ("sold_at", "recorded as 2026-11-23T15:00:00+00:00, sent as 2026-11-23T15:01:00+00:00"),
        ("phone", "recorded as +51987654321, sent as +51987654322"),
        ("product_sku", "recorded as LAV-9, sent as LAV-10"),
        ("amount", "recorded as 1899.00, sent as 1.00"),
        ("currency", "recorded as PEN, sent as USD"),
    ]
    assert differences(recorded(), sale_input(amount=None, product_sku=None)) == [
        ("product_sku", "recorded as LAV-9, sent as nothing"),
        ("amount", "recorded as 1899.00, sent as nothing"),
    ]


def test_the_customer_is_compared_as_it_is_found() -> None:
    # With a phone, the phone finds the customer: an email they never gave us is no difference.
    with_email = sale_input(email="rosa@example.pe")
    assert differences(recorded(), with_email) == []
    # Without one, the email does.
    by_email = sale_input(phone=None, email="ana@example.pe")
    assert differences(recorded(email="rosa@example.pe"), by_email) == [
        ("email", "recorded as rosa@example.pe, sent as ana@example.pe")
    ]
