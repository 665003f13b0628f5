"""Checking raw sales: every problem at once, named by field; clean values out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.config import defaults
from scheduler.sending.intake import _plainly_fit, _unfit_name, _unfit_value, validate_sale
from scheduler.sending.sales import SaleInput
from tests.factories import NOW, raw

CONFIG = defaults()  # business in Lima (UTC-5), country PE


def valid(**changes: Any) -> SaleInput:
    result = validate_sale(raw(**changes), CONFIG, now=NOW)
    assert isinstance(result, SaleInput), result
    return result


def problems(**changes: Any) -> list[tuple[str, str]]:
    result = validate_sale(raw(**changes), CONFIG, now=NOW)
    assert isinstance(result, list), result
    return result


def test_a_valid_row_becomes_a_sale_input_with_clean_values() -> None:
    sale = valid(email=" Rosa@Example.PE ", attributes={"store": "Miraflores"})
    assert sale.external_id == "S-1" and sale.customer_name == "Rosa Quispe"
    assert sale.sold_at == datetime(2026, 11, 23, 14, 30, tzinfo=UTC)  # Lima time read as such
    assert sale.phone == "+51987654321"
    assert sale.email == "rosa@example.pe"  # one spelling: customers are matched by it
    assert sale.amount == Decimal("1899.90") and sale.currency == "PEN"
    assert (sale.locale, sale.timezone) == (None, None)  # blank cells mean "not given"
    assert sale.attributes == {"store": "Miraflores"}


def test_an_offset_in_sold_at_is_respected() -> None:
    assert valid(sold_at="2026-11-23T09:30:00Z").sold_at == datetime(
        2026, 11, 23, 9, 30, tzinfo=UTC
    )
    assert valid(sold_at="2026-11-23T09:30:00+01:00").sold_at == datetime(
        2026, 11, 23, 8, 30, tzinfo=UTC
    )


def test_every_problem_is_listed_at_once_in_field_order() -> None:
    found = problems(
        external_id="",
        sold_at="yesterday",
        customer_name="  ",
        phone="12",
        email="not-an-email",
        locale="fr",
        timezone="Mars/Olympus",
        amount="-3",
        currency="soles",
    )
    assert [field for field, _ in found] == [
        "external_id",
        "sold_at",
        "customer_name",
        "phone",
        "email",
        "locale",
        "timezone",
        "amount",
        "currency",
    ]
    messages = dict(found)
    assert messages["external_id"] == "is required"
    assert "ISO 8601" in messages["sold_at"]
    assert "read as PE" in messages["phone"]
    assert "'fr'" in messages["locale"] and "es or en" in messages["locale"]
    assert "IANA" in messages["timezone"]
    assert messages["amount"] == "must not be negative"


def test_a_phone_or_an_email_is_required() -> None:
    assert problems(phone="", email="") == [("phone", "a phone or an email is required")]
    assert valid(phone="", email="rosa@example.pe").phone is None


def test_missing_keys_are_like_blank_ones() -> None:
    found = validate_sale({"external_id": "S-1"}, CONFIG, now=NOW)
    assert isinstance(found, list)
    assert [field for field, _ in found] == ["sold_at", "customer_name", "phone"]


def test_sold_at_more_than_a_day_ahead_is_refused() -> None:
    assert valid(sold_at="2026-11-24T09:59:00").sold_at < NOW.replace(day=25)
    [(field, message)] = problems(sold_at="2026-11-24T10:01:00")
    assert field == "sold_at" and "more than 24 hours in the future" in message


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("10", Decimal("10.00")), (1899.9, Decimal("1899.90")), (0, Decimal("0.00")), ("", None)],
)
def test_amounts_are_decimals_with_cents(amount: object, expected: Decimal | None) -> None:
    assert valid(amount=amount).amount == expected


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("1.899,00", "1899.00"),  # Spain, Latin America
        ("1899,00", "1899.00"),
        ("1,899.00", "1899.00"),  # the United States, Peru
        ("1 899,50", "1899.50"),
        ("1\u00a0899,50", "1899.50"),  # a spreadsheet's non-breaking space
        ("1'899.00", "1899.00"),
        ("1.234.567,89", "1234567.89"),
        ("1,234,567", "1234567.00"),
        ("0,5", "0.50"),
    ],
)
def test_amounts_as_spreadsheets_write_them(written: str, expected: str) -> None:
    assert valid(amount=written).amount == Decimal(expected)


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("1,899", "could be read two ways"),  # a thousand and more, or a little over one?
        ("18,99.00", "is not a number (such as 1899.90 or 1.899,90)"),
        ("1.2.3", "is not a number"),
        ("1.899,", "is not a number"),
        ("1,5678", "more than two decimals"),
        ("-1.899,00", "must not be negative"),
    ],
)
def test_amounts_that_could_be_misread_are_refused(written: str, message: str) -> None:
    [(field, text)] = problems(amount=written)
    assert field == "amount" and message in text


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("1.999", "more than two decimals"),
        ("abc", "not a number"),
        ("NaN", "not a number"),
        (True, "must be a number"),
        ("99999999999", "at most"),
    ],
)
def test_bad_amounts_say_why(amount: object, message: str) -> None:
    [(field, text)] = problems(amount=amount)
    assert field == "amount" and message in text


def test_currency_is_three_capital_letters() -> None:
    assert valid(currency="USD").currency == "USD"
    assert [field for field, _ in problems(currency="usd")] == ["currency"]


def test_locale_and_time_zone_when_given() -> None:
    sale = valid(locale="en", timezone="Europe/Madrid")
    assert (sale.locale, sale.timezone) == ("en", "Europe/Madrid")


def test_a_product_name_without_sku_is_accepted() -> None:
    sale = valid(product_sku="", product_name="Lavadora")
    assert sale.product_sku is None and sale.product_name == "Lavadora"


def test_values_that_are_not_text_are_named() -> None:
    found = problems(customer_name=42, phone=["+51987654321"], attributes="store=Miraflores")
    assert found == [
        ("customer_name", "must be text"),
        ("phone", "must be text"),
        ("attributes", "must be an object of names and values"),
    ]


def test_too_long_external_id_is_refused() -> None:
    [(field, message)] = problems(external_id="X" * 101)
    assert field == "external_id" and "at most 100" in message


def test_a_text_read_again_is_read_for_its_own_moment_and_business() -> None:
    """What a file repeats (a date, a price, a phone) is read once, but not across what the
    reading depends on: the moment of the check and the business's time zone and limits."""
    madrid = CONFIG.replace(business={"timezone": "Europe/Madrid"})
    later = NOW + timedelta(days=2)
    read = [
        validate_sale(raw(sold_at=text), config, now=now)
        for text, config, now in [
            ("2026-11-24T10:01:00", CONFIG, later),
            ("2026-11-24T10:01:00", CONFIG, NOW),
            ("2026-11-24T10:01:00", madrid, NOW),
            ("2026-11-24T10:01:00", CONFIG.replace(sales={"max_future_hours": 48}), NOW),
            ("2026-11-24T10:01:00", CONFIG, NOW),
        ]
    ]
    assert [getattr(sale, "sold_at", None) for sale in read] == [
        datetime(2026, 11, 24, 15, 1, tzinfo=UTC),
        None,
        datetime(2026, 11, 24, 9, 1, tzinfo=UTC),
        datetime(2026, 11, 24, 15, 1, tzinfo=UTC),
        None,
    ]
    refusal = [("sold_at", "'2026-11-24T10:01:00' is more than 24 hours in the future")]
    assert read[1] == read[4] == refusal  # refused each time, alike


def test_repeated_values_of_a_file_are_each_read_right() -> None:
    sales = [
        valid(amount=amount, phone=phone, email=email)
        for amount, phone, email in [
            ("1.899,00", "987 654 321", "Rosa@Example.PE"),
            ("20", "+51 912 345 678", "ana@example.pe"),
            ("1.899,00", "987 654 321", "Rosa@Example.PE"),
        ]
    ]
    assert [(s.amount, s.phone, s.email) for s in sales] == [
        (Decimal("1899.00"), "+51987654321", "rosa@example.pe"),
        (Decimal("20.00"), "+51912345678", "ana@example.pe"),
        (Decimal("1899.00"), "+51987654321", "rosa@example.pe"),
    ]
    for _ in range(2):  # a refusal is said again, not forgotten
        assert problems(amount="1,899", phone="12") == [
            ("phone", problems(phone="12")[0][1]),
            ("amount", problems(amount="1,899")[0][1]),
        ]


# Attribute values as a shop or a JSON body sends them: text with the odd control character,
# line break or surrogate, numbers (NaN too), names that are not text, nesting past the limit.
_ODD_TEXT = st.text("ab \t\n\x00\x1f\x7f\x85\ud800é", max_size=4)
_ATTRIBUTE_VALUES = st.recursive(
    _ODD_TEXT | st.integers() | st.floats() | st.none() | st.booleans(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_ODD_TEXT | st.integers(), inner, max_size=3)
    ),
    max_leaves=30,
)
_DEEP = {"deep": [[[[[[[[[[["too deep"]]]]]]]]]]], "fine": [[[[[[[[["ok"]]]]]]]]]}


@given(st.dictionaries(_ODD_TEXT | st.integers(), _ATTRIBUTE_VALUES, max_size=4))
@settings(max_examples=400, deadline=None, derandomize=True, database=None)
def test_attributes_passed_at_a_glance_have_nothing_to_refuse(attributes: dict[Any, Any]) -> None:
    one_by_one = [_unfit_name(name) or _unfit_value(value, 1) for name, value in attributes.items()]
    if _plainly_fit(attributes):
        assert not any(one_by_one)


def test_a_shops_attributes_pass_at_a_glance_and_deep_ones_are_still_refused() -> None:
    order = {"shop": "shopify", "items": [{"sku": "LAV-9", "quantity": 1, "price": None}]}
    assert _plainly_fit(order) and valid(attributes=order).attributes == order
    assert not _plainly_fit(_DEEP)
    assert problems(attributes=_DEEP) == [("attributes.deep", "is nested more than 10 levels deep")]


class _Text(str):
    """Text of a str subclass, as an enum's value or a library's string type."""


def test_other_mappings_and_texts_are_seen_at_a_glance_as_dicts_and_strs() -> None:
    inner = MappingProxyType({"sku": _Text("LAV-9"), "n": 2, "ok": True, "none": None})
    assert _plainly_fit({"items": [inner]})
    assert not _plainly_fit({"items": [MappingProxyType({"price": 1.5})]})
    assert not _plainly_fit({"items": [MappingProxyType({"note": "a\x00b"})]})
    assert not _plainly_fit({"items": [{"note": _Text("a\x1fb")}]})
