"""Checking a raw sale before it is recorded: one set of rules for the JSON API and the CSV import.

Every problem is reported at once, named by its field, so that whoever sends a bad sale can fix
it in one go instead of discovering the problems one request (or one import) at a time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scheduler.addresses import normalise_email, normalise_phone
from scheduler.config import LOCALES, Config
from scheduler.sending.products import MAX_CATEGORY, parse_renewal_days
from scheduler.sending.sales import SaleInput
from scheduler.typed_text import LINE_BREAKS, text_cell, unfit_character

Problem = tuple[str, str]  # (field, message), the field named as in the raw mapping

FIELDS = (
    "external_id",
    "sold_at",
    "customer_name",
    "phone",
    "email",
    "locale",
    "timezone",
    "product_sku",
    "product_name",
    "category",
    "renewal_days",
    "amount",
    "currency",
    "whatsapp_opt_in",
)
# Column sizes in scheduler.models: longer text would fail at the database, not here.
MAX_LENGTHS = {
    "external_id": 100,
    "customer_name": 200,
    "product_sku": 64,
    "product_name": 200,
    "category": MAX_CATEGORY,
    "timezone": 64,
}
# Numeric(12, 2): ten digits before the point.
MAX_AMOUNT = Decimal("9999999999.99")
_ORDER = {field: index for index, field in enumerate((*FIELDS, "attributes"))}
_TEXT_FIELDS = tuple(
    field for field in FIELDS if field not in ("amount", "renewal_days", "whatsapp_opt_in")
)
_CURRENCY = re.compile(r"[A-Z]{3}")
_CENT = Decimal("0.01")
# A yes or a no as a CSV cell may say it; blank is "not given", which is not a no.
YES = frozenset({"true", "yes", "y", "si", "sí", "s", "1", "x"})
NO = frozenset({"false", "no", "n", "0"})
# Attributes are kept as given, but a value nested deeper than this is not a shop's data.
MAX_ATTRIBUTE_DEPTH = 10


def _text(raw: Mapping[str, Any], key: str, problems: list[Problem]) -> str | None:
    """The stripped text of `key`; None when absent or blank (a CSV cell is never missing)."""
    try:
        return text_cell(raw.get(key), MAX_LENGTHS.get(key))
    except ValueError as error:
        problems.append((key, str(error)))
        return None


def _said_yes(value: Any, key: str, problems: list[Problem]) -> bool:
    """A consent given with the sale: JSON true or false, or a CSV cell's yes or no. Not given
    (or no) records nothing: it never takes back a yes the customer gave elsewhere."""
    if value is None or isinstance(value, bool):
        return bool(value)
    word = value.strip().lower() if isinstance(value, str) else None
    if word is None or (word and word not in YES | NO):
        problems.append((key, "must be true or false (in a CSV: yes, no, or blank)"))
        return False
    return word in YES


def parse_sold_at(text: str, config: Config, now: datetime) -> datetime:
    """An aware UTC datetime from ISO 8601; without an offset it is the business's local time.

    Shops export local times without offsets; reading them as UTC would move every follow-up
    by the business's UTC offset.
    """
    sales = config.sales
    return _sold_at(text, config.business.tz, sales.max_age_days, sales.max_future_hours, now)


# The rows of a file share dates, prices and customers: each distinct text is read once (a
# refusal is not kept, and is said again for each row).
CACHED = 4096


@lru_cache(maxsize=CACHED)
def _sold_at(text: str, business: tzinfo, days: int, hours: float, now: datetime) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date and time (such as 2026-11-23T10:30:00-05:00)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=business)
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59 in Lima, 0001-01-01T00:00:00+14:00
        value = (datetime.max if value.year > 1 else datetime.min).replace(tzinfo=UTC)
    if value > now + timedelta(hours=hours):
        raise ValueError(f"{text!r} is more than {hours:g} hours in the future")
    if value < now - timedelta(days=days):
        raise ValueError(f"{text!r} is more than {days} days in the past")
    return value


_GROUPS = re.compile(r"[1-9]\d{0,2}(?:(?P<by>[.,' ])\d{3})?(?:(?P=by)\d{3})*")
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " "})  # as spreadsheets group thousands


def plain_number(text: str) -> str:
    """An amount as a spreadsheet writes it, as Python reads one: "1.899,00", "1 899,00",
    "1,899.00", "1.234.567" and "1899,00" are all plain. The last of "," and "." is the
    decimal mark when both appear; a comma alone is one when one or two digits follow it.
    What could be read two ways ("1,899": a thousand and more, or a little over one) is
    refused, never guessed, and so is a slip in the thousands ("18,99.00")."""
    text = text.translate(_SPACES).strip()
    sign, body = ("-", text[1:].strip()) if text.startswith("-") else ("", text)
    if "," not in body and body.count(".") <= 1 and not (" " in body or "'" in body):
        return text  # Python's own spelling: Decimal reads it, or says what is wrong
    marks = [i for i, char in enumerate(body) if char in ",."]
    kinds = {body[i] for i in marks}
    last = marks[-1] if marks else len(body)
    alone = len(marks) == 1
    if alone and len(body) - last - 1 == 3:
        raise ValueError(f"{text!r} could be read two ways: write it with its cents (1.899,00)")
    decimal = len(kinds) == 2 or alone  # both marks: the last; one mark once: it
    whole, fraction = (body[:last], body[last + 1 :]) if decimal else (body, "")
    if not (_GROUPS.fullmatch(whole) or whole.isdigit()) or decimal and not fraction.isdigit():
        raise ValueError(f"{text!r} is not a number (such as 1899.90 or 1.899,90)")
    digits = "".join(char for char in whole if char.isdigit())
    return sign + digits + (f".{fraction}" if decimal else "")


def parse_amount(value: Any) -> Decimal:
    """A non-negative amount with at most two decimals; floats from JSON are read as written,
    text as a spreadsheet writes it (`plain_number`)."""
    return _amount_in_text(value) if isinstance(value, str) else _amount(value)


def _amount(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError("must be a number such as 1899.90")
    text = plain_number(value) if isinstance(value, str) else str(value)
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number (such as 1899.90 or 1.899,90)") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a number (such as 1899.90 or 1.899,90)")
    if amount < 0:
        raise ValueError("must not be negative")
    if amount > MAX_AMOUNT:  # first: quantizing 1e300 to cents overflows Decimal's precision
        raise ValueError(f"must be at most {MAX_AMOUNT}")
    if amount != amount.quantize(_CENT):
        raise ValueError(f"{value!r} has more than two decimals")
    return amount.quantize(_CENT)


_amount_in_text = lru_cache(maxsize=CACHED)(_amount)
_phone = lru_cache(maxsize=CACHED)(normalise_phone)
_email = lru_cache(maxsize=CACHED)(normalise_email)


def supported_locale(locale: str) -> str:
    """`locale` when customers can be written to in it; ValueError naming the choices."""
    if locale not in LOCALES:
        raise ValueError(f"{locale!r} is not supported (use {' or '.join(LOCALES)})")
    return locale


def known_time_zone(name: str) -> str:
    """`name` when it is an IANA time zone; ValueError with an example."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
        raise ValueError(
            f"{name!r} is not a known time zone (use an IANA name such as America/Lima)"
        ) from None
    return name


def _attribute_problems(attributes: Mapping[str, Any]) -> list[Problem]:
    """One problem per attribute that cannot be kept, named `attributes.NAME`."""
    if _plainly_fit(attributes):
        return []
    problems = []
    for name, value in attributes.items():
        unfit = _unfit_name(name)
        if unfit:
            problems.append(("attributes", unfit))
            continue
        unfit = _unfit_value(value, 1)
        if unfit:
            problems.append((f"attributes.{name}", unfit))
    return problems


def _plainly_fit(attributes: Mapping[str, Any]) -> bool:
    """Whether no attribute has anything to refuse, seen at a glance: every name, and every
    text, searched at once (a shop's order holds dozens: one search, not one call each). Any
    doubt (a line break, a name not text, a float, deep nesting) says False, and
    `_attribute_problems` looks at each to say what. JSON's own types are told by their exact
    type first: Mapping's check is slow, and ran for every number and null."""
    names: list[Any] = []
    texts: list[str] = []
    containers: list[tuple[Mapping[str, Any] | list[Any], int]] = [(attributes, 0)]
    while containers:
        container, depth = containers.pop()
        if depth >= MAX_ATTRIBUTE_DEPTH:
            return False
        values: Iterable[Any] = container
        if type(container) is dict or isinstance(container, Mapping):
            names += container
            values = container.values()
        for value in values:
            kind = type(value)
            if kind is str:
                texts.append(value)
            elif kind is dict or kind is list:
                containers.append((value, depth + 1))
            elif kind is int or value is None:
                continue
            elif isinstance(value, str):
                texts.append(value)
            elif isinstance(value, float):
                return False
            elif isinstance(value, dict | list | Mapping):
                containers.append((value, depth + 1))
    try:
        joined = "".join(names)
    except TypeError:  # a name that is not text
        return False
    return unfit_character(joined) is None and unfit_character("".join(texts)) is None


def _unfit_name(name: object) -> str | None:
    if not isinstance(name, str):
        return "has a name that is not text"
    unfit = unfit_character(name)
    return f"has a name that {unfit}" if unfit else None


def _unfit_value(value: Any, depth: int) -> str | None:
    """Why an attribute's value cannot be kept, or None (JSON cannot hold NaN or infinity)."""
    if depth > MAX_ATTRIBUTE_DEPTH:
        return f"is nested more than {MAX_ATTRIBUTE_DEPTH} levels deep"
    if isinstance(value, str):
        return unfit_character(value, allowed=LINE_BREAKS)
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not a number"
    items: list[Any] = []
    if isinstance(value, Mapping):
        names = (_unfit_name(name) for name in value)
        unfit = next((problem for problem in names if problem), None)
        if unfit:
            return unfit
        items = list(value.values())
    elif isinstance(value, list):
        items = value
    for item in items:
        unfit = _unfit_value(item, depth + 1)
        if unfit:
            return unfit
    return None


def validate_sale(
    raw: Mapping[str, Any], config: Config, *, now: datetime
) -> SaleInput | list[Problem]:
    """A SaleInput ready for `record_sale`, or every problem found, in field order.

    `raw` holds the keys in FIELDS (missing keys and blank values mean "not given") and an
    optional `attributes` mapping, kept with the sale as given. A product name without a SKU
    is accepted, but only a SKU makes a product (that is how products are told apart): so are
    a category and a renewal period, which then describe no product and are not kept.
    """
    problems: list[Problem] = []
    text = {key: _text(raw, key, problems) for key in _TEXT_FIELDS}
    problem_fields = {field for field, _ in problems}

    def required(key: str, message: str) -> None:
        if text[key] is None and key not in problem_fields:
            problems.append((key, message))

    required("external_id", "is required")
    sold_at = None
    if text["sold_at"] is not None:
        try:
            sold_at = parse_sold_at(text["sold_at"], config, now)
        except ValueError as error:
            problems.append(("sold_at", str(error)))
    else:
        required("sold_at", "is required (ISO 8601, such as 2026-11-23T10:30:00)")
    required("customer_name", "is required")

    phone = email = None
    if text["phone"] is not None:
        try:
            phone = _phone(text["phone"], config.business.country)
        except ValueError as error:
            problems.append(("phone", str(error)))
    if text["email"] is not None:
        try:
            email = _email(text["email"])
        except ValueError as error:
            problems.append(("email", str(error)))
    if text["phone"] is None and text["email"] is None and not {"phone", "email"} & problem_fields:
        problems.append(("phone", "a phone or an email is required"))

    locale = text["locale"]
    if locale is not None:
        try:
            supported_locale(locale)
        except ValueError as error:
            problems.append(("locale", str(error)))
    if text["timezone"] is not None:
        try:
            known_time_zone(text["timezone"])
        except ValueError as error:
            problems.append(("timezone", str(error)))

    amount = None
    raw_amount = raw.get("amount")
    if raw_amount is not None and not (isinstance(raw_amount, str) and not raw_amount.strip()):
        try:
            amount = parse_amount(raw_amount)
        except ValueError as error:
            problems.append(("amount", str(error)))
    currency = text["currency"]
    if currency is not None and not _CURRENCY.fullmatch(currency):
        problems.append(("currency", f"{currency!r} is not an ISO 4217 code (such as PEN, USD)"))

    renewal_days = None
    try:
        renewal_days = parse_renewal_days(raw.get("renewal_days"))
    except ValueError as error:
        problems.append(("renewal_days", str(error)))

    whatsapp_opt_in = _said_yes(raw.get("whatsapp_opt_in"), "whatsapp_opt_in", problems)
    if whatsapp_opt_in and phone is None and "phone" not in problem_fields:
        problems.append(("whatsapp_opt_in", "WhatsApp needs the customer's phone"))

    attributes = raw.get("attributes")
    if attributes is None:
        attributes = {}
    elif not isinstance(attributes, Mapping):
        problems.append(("attributes", "must be an object of names and values"))
    else:
        problems += _attribute_problems(attributes)

    if problems:
        return sorted(problems, key=lambda problem: _ORDER[problem[0].partition(".")[0]])
    assert text["external_id"] is not None and text["customer_name"] is not None
    assert sold_at is not None
    return SaleInput(
        external_id=text["external_id"],
        sold_at=sold_at,
        customer_name=text["customer_name"],
        phone=phone,
        email=email,
        locale=locale,
        timezone=text["timezone"],
        product_sku=text["product_sku"],
        product_name=text["product_name"],
        category=text["category"],
        renewal_days=renewal_days,
        amount=amount,
        currency=currency,
        attributes=dict(attributes),
        whatsapp_opt_in=whatsapp_opt_in,
    )
