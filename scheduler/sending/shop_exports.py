"""The orders exports of Shopify and WooCommerce, known by their headers and read without any
set-up, into the same `ShopOrder` their webhooks give (so an export imported after the
webhooks, or before them, records each order once).

Shopify writes one line per item, the order's fields on its first line only. WooCommerce's
orders export (the Import Export Suite's columns) writes one line per order, each item in a
`line_item_N` cell such as `name:Lavadora|sku:LAV-9|quantity:1|total:1899.00`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from operator import itemgetter

from scheduler.sending.columns import normal_name
from scheduler.sending.csv_cells import Cells, as_text
from scheduler.sending.intake import MAX_AMOUNT
from scheduler.sending.shop_orders import (
    MAX_QUANTITY,
    SHOPIFY,
    WOOCOMMERCE,
    WOOCOMMERCE_STATUSES,
    LineItem,
    OrderAction,
    ShopOrder,
)
from scheduler.sending.spreadsheet_dates import DateOrder, is_spreadsheet_date

_SHOPIFY_COLUMNS = {"name", "id", "financial_status", "lineitem_quantity", "lineitem_name"}
_WOOCOMMERCE_COLUMNS = {"order_id", "order_number", "order_date", "status", "order_total"}
# Orders that were paid for, and not wholly given back: the ones worth asking about (the
# webhooks record an order on `orders/paid`).
_SHOPIFY_PAID = {"paid", "partially_paid", "partially_refunded"}
# "2026-11-27 15:30:12 -0500", as Shopify writes times: ISO 8601 but for the space and the
# offset's missing colon.
_SHOPIFY_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}(?::\d{2})?) ?([+-]\d{2}):?(\d{2})")
# The date order of each shop's exports, when a file's dates do not show it themselves.
DATE_ORDER = {SHOPIFY: None, WOOCOMMERCE: DateOrder.MONTH_FIRST}
# The columns an order's time is read from, the first one filled.
_PLACED = {SHOPIFY: ("created_at", "paid_at"), WOOCOMMERCE: ("paid_date", "order_date")}


def recognise(header: Sequence[str]) -> str | None:
    """The shop whose orders export this header is, or None."""
    names = {normal_name(name) for name in header}
    if _SHOPIFY_COLUMNS <= names:
        return SHOPIFY
    if _WOOCOMMERCE_COLUMNS <= names and any(name.startswith("line_item_") for name in names):
        return WOOCOMMERCE
    return None


@dataclass(frozen=True)
class ExportedOrder:
    """An order read from an export: its lines in the file, and the order, or why it is not
    one to follow up (its field as the file names it, and the reason)."""

    lines: tuple[int, ...]
    order: ShopOrder | None
    refused: tuple[str, str] | None = None


def orders(
    header: Sequence[str], rows: Sequence[tuple[int, Cells]], shop: str
) -> Iterator[ExportedOrder]:
    """Each order of an export, in file order; rows of the wrong length are the caller's."""
    names = [normal_name(name) for name in header]
    if shop == SHOPIFY:
        yield from _shopify(names, rows)
    else:
        yield from _woocommerce(names, rows)


# The columns an order is read from (of Shopify's 79, WooCommerce's 50 and more).
_READ = {
    *("name", "id", "email", "phone", "financial_status", "paid_at", "created_at"),
    *("cancelled_at", "currency", "total", "billing_name", "shipping_name", "billing_phone"),
    *("shipping_phone", "lineitem_quantity", "lineitem_name", "lineitem_price", "lineitem_sku"),
    *("order_id", "order_number", "order_date", "paid_date", "status", "order_total"),
    *("order_currency", "customer_email", "billing_first_name", "billing_last_name"),
    *("billing_email", "shipping_first_name", "shipping_last_name"),
}


_SHOPIFY_ITEM = ("name", "lineitem_quantity", "lineitem_name", "lineitem_price", "lineitem_sku")


def _read(name: str) -> bool:
    return name in _READ or name.startswith("line_item_")


def _cell(text: str) -> str:
    """A cell as an order reads it: trimmed, and a guard our rejected rows' file put on it
    taken off."""
    return as_text(text.strip())


def _reader(
    names: list[str], only: Collection[str] | None = None
) -> Callable[[Cells], dict[str, str]]:
    """A row's cells by column name, for the columns an order is read from (or `only` these)."""
    wanted = [
        (i, name)
        for i, name in enumerate(names)
        if (name in only if only is not None else _read(name))
    ]

    def cells(row: Cells) -> dict[str, str]:
        return {name: _cell(row[i]) for i, name in wanted}

    return cells


def _order_name(names: list[str]) -> Callable[[Cells], str]:
    """A Shopify line's order name (`#1001`), which its order's lines share."""
    at = names.index("name")  # a column the export is recognised by
    return lambda cells: _cell(cells[at])


def _shopify(names: list[str], rows: Sequence[tuple[int, Cells]]) -> Iterator[ExportedOrder]:
    """Consecutive lines of one order's name (`#1001`) grouped: its first line holds the
    order; the others, its items (only those columns are read of them)."""
    group: list[tuple[int, dict[str, str]]] = []
    read, read_item, name_of = _reader(names), _reader(names, _SHOPIFY_ITEM), _order_name(names)
    name = ""
    for line, cells in rows:
        if group and name_of(cells) == name:
            group.append((line, read_item(cells)))
            continue
        if group:
            yield _shopify_order(group)
        group, name = [(line, read(cells))], name_of(cells)
    if group:
        yield _shopify_order(group)


def order_parts(
    header: Sequence[str], rows: Sequence[tuple[int, Cells]], shop: str, size: int
) -> Iterator[list[tuple[int, Cells]]]:
    """The rows in consecutive parts of about `size`, an order's lines never split: parts
    that other processes read orders from."""
    name_of = _order_name([normal_name(name) for name in header]) if shop == SHOPIFY else None
    part: list[tuple[int, Cells]] = []
    for row in rows:
        if len(part) >= size and (name_of is None or name_of(row[1]) != name_of(part[-1][1])):
            yield part
            part = []
        part.append(row)
    if part:
        yield part


def narrowed(
    header: Sequence[str], rows: Sequence[tuple[int, Cells]]
) -> tuple[list[str], list[tuple[int, Cells]]]:
    """The export with the columns an order is read from alone (a fifth of Shopify's 79):
    what is sent to another process, cell by cell, to read its orders."""
    wanted = [i for i, name in enumerate(header) if _read(normal_name(name))]
    take = itemgetter(*wanted)  # a tuple: an export has at least the five it is known by
    return [header[i] for i in wanted], [(line, take(cells)) for line, cells in rows]


def spreadsheet_dated(header: Sequence[str], rows: Sequence[tuple[int, Cells]], shop: str) -> bool:
    """Whether a cell an order's time may be read from is written as a spreadsheet writes
    dates (`27/11/2026`): such a time is read in the file's date order, which every order
    must be read to know. A shop writes its own times otherwise (ISO 8601 or near it)."""
    at = [i for i, name in enumerate(header) if normal_name(name) in _PLACED[shop]]
    return any(is_spreadsheet_date(_cell(cells[i])) for _line, cells in rows for i in at)


def _placed(first: dict[str, str], shop: str) -> str:
    return next(filter(None, (first.get(name) for name in _PLACED[shop])), "")


def _shopify_order(group: list[tuple[int, dict[str, str]]]) -> ExportedOrder:
    lines = tuple(line for line, _row in group)
    first = group[0][1]
    status = first.get("financial_status", "").lower()
    if first.get("cancelled_at"):
        return ExportedOrder(lines, None, ("Cancelled at", f"order {first['name']} was cancelled"))
    if status not in _SHOPIFY_PAID:
        reason = (
            f"order {first['name']} is {status or 'not paid'}: only paid orders are followed up"
        )
        return ExportedOrder(lines, None, ("Financial Status", reason))
    try:
        items = tuple(
            LineItem(
                sku=row.get("lineitem_sku") or None,
                name=row.get("lineitem_name", ""),
                quantity=_quantity(row.get("lineitem_quantity", ""), "Lineitem quantity"),
                unit_price=_price(row.get("lineitem_price", ""), "Lineitem price"),
            )
            for _line, row in group
        )
    except BadItem as bad:
        return ExportedOrder(lines, None, (bad.field, str(bad)))
    placed = _placed(first, SHOPIFY)  # its creation, as the webhook's order
    found = _SHOPIFY_TIME.fullmatch(placed)
    order = ShopOrder(
        shop=SHOPIFY,
        order_id=first.get("id") or first["name"],
        name=first["name"] or None,
        placed_at=f"{found[1]}T{found[2]}{found[3]}:{found[4]}" if found else placed,
        customer_name=first.get("billing_name") or first.get("shipping_name") or None,
        phone=first.get("phone") or first.get("billing_phone") or first.get("shipping_phone"),
        email=first.get("email") or None,
        currency=first.get("currency") or None,
        total=first.get("total") or None,
        items=items,
    )
    return ExportedOrder(lines, order)


def _woocommerce(names: list[str], rows: Sequence[tuple[int, Cells]]) -> Iterator[ExportedOrder]:
    read = _reader(names)
    for line, cells in rows:
        row = read(cells)
        number = row.get("order_number") or row.get("order_id", "")
        status = row.get("status", "").lower().removeprefix("wc-")
        if WOOCOMMERCE_STATUSES.get(status) is not OrderAction.RECORD:
            said = status or "without a status"
            reason = f"order {number} is {said}: only completed orders are followed up"
            yield ExportedOrder((line,), None, ("status", reason))
            continue
        person = " ".join(
            filter(None, (row.get("billing_first_name"), row.get("billing_last_name")))
        )
        shipped = " ".join(
            filter(None, (row.get("shipping_first_name"), row.get("shipping_last_name")))
        )
        try:
            items = tuple(
                _woocommerce_item(row[name], name)
                for name in names
                if name.startswith("line_item_") and row.get(name)
            )
        except BadItem as bad:
            yield ExportedOrder((line,), None, (bad.field, str(bad)))
            continue
        order = ShopOrder(
            shop=WOOCOMMERCE,
            order_id=row.get("order_id") or number,
            name=number or None,
            placed_at=_placed(row, WOOCOMMERCE),
            customer_name=person or shipped or None,
            phone=row.get("billing_phone") or row.get("shipping_phone") or None,
            email=row.get("billing_email") or row.get("customer_email") or None,
            currency=row.get("order_currency") or None,
            total=row.get("order_total") or None,
            items=items,
        )
        yield ExportedOrder((line,), order)


class BadItem(ValueError):
    """An order's line that cannot be read: the order is refused, naming the column."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _woocommerce_item(cell: str, column: str) -> LineItem:
    """`name:Lavadora|product_id:12|sku:LAV-9|quantity:2|total:3798.00`: the unit price is
    the line's total over its quantity."""
    parts = dict(part.partition(":")[::2] for part in cell.split("|"))
    if not parts.get("name", "").strip():
        raise BadItem(column, f"{cell[:60]!r} is not an item (name:...|quantity:...|total:...)")
    quantity = _quantity(parts.get("quantity", ""), column)
    total = _price(parts.get("total", ""), column)
    unit = str((Decimal(total) / quantity).quantize(Decimal("0.01"))) if total else None
    return LineItem(
        sku=parts.get("sku") or None,
        name=parts["name"].strip(),
        quantity=quantity,
        unit_price=unit,
    )


def _quantity(text: str, column: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_QUANTITY):
        raise BadItem(column, f"{text[:40]!r} is not a quantity (a whole number such as 1)")
    return int(text)


def _price(text: str, column: str) -> str | None:
    """A line's price as the shop wrote it (a plain decimal), or None when not given."""
    text = text.strip()
    if not text:
        return None
    try:
        price = Decimal(text)
    except InvalidOperation:
        price = Decimal("NaN")
    if not price.is_finite() or not 0 <= price <= MAX_AMOUNT:
        raise BadItem(column, f"{text[:40]!r} is not a price (such as 1899.00)")
    return text
