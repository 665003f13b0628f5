"""The orders exports of Shopify and WooCommerce import with no set-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.config import defaults
from scheduler.defaults import install_defaults
from scheduler.models import FollowUp, Product, Sale
from scheduler.sending import csv_import, shop_exports
from scheduler.sending.csv_import import (
    ImportCheck,
    RowProblem,
    Storing,
    check_sales_csv,
    check_table,
    import_sales,
    read_table,
    rejected_csv,
)
from tests.factories import NOW
from tests.shop_exports import (
    SHOPIFY_HEADER,
    WOOCOMMERCE_HEADER,
    as_csv,
    shopify_lines,
    woocommerce_line,
)

MIXED_ORDER = (
    ("BOLSA", "Bolsa reutilizable", 2, "5.00"),
    ("LAV-9", "Lavadora EcoWash 9 kg", 1, "1899.00"),
    ("GAR-2", "Garantía extendida", 1, "199.00"),
)


@pytest.fixture
def frozen() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def _shopify_file() -> str:
    return as_csv(
        SHOPIFY_HEADER,
        [
            *shopify_lines(1001, items=MIXED_ORDER),
            *shopify_lines(1002, email="", phone="", billing_name=""),  # nobody to ask
            *shopify_lines(1003, phone="", billing_name="", email="guest@example.com"),
            *shopify_lines(1004, currency="USD", items=(("TV-55", "TV 55", 1, "499.99"),)),
            *shopify_lines(1005, status="refunded"),
            *shopify_lines(1006, status="pending"),
            *shopify_lines(1007, cancelled_at="2026-11-21 09:00:00 -0500"),
        ],
    )


def test_a_shopify_export_reads_an_order_from_its_lines(frozen: None) -> None:
    check = check_sales_csv(_shopify_file(), defaults(), now=NOW)
    assert check.source == "shopify" and check.rows == 7
    sales = {sale.external_id: (line, sale) for line, sale in check.sales}
    assert sorted(sales) == ["shopify:5100001001", "shopify:5100001003", "shopify:5100001004"]
    line, mixed = sales["shopify:5100001001"]
    assert line == 2  # the order's first line
    assert (mixed.product_sku, mixed.product_name) == ("LAV-9", "Lavadora EcoWash 9 kg")
    assert mixed.amount == Decimal("2108.00") and mixed.currency == "PEN"
    assert mixed.sold_at == datetime(2026, 11, 20, 20, 30, 12, tzinfo=UTC)
    assert mixed.phone == "+51987654321" and mixed.customer_name == "Rosa Quispe"
    assert [item["sku"] for item in mixed.attributes["items"]] == ["BOLSA", "LAV-9", "GAR-2"]
    assert mixed.attributes["order_name"] == "#1001"
    _, guest = sales["shopify:5100001003"]
    assert guest.customer_name == "guest@example.com" and guest.phone is None
    assert sales["shopify:5100001004"][1].currency == "USD"  # kept as the shop charged it
    lines = {problem.line: problem for problem in check.problems}
    assert lines[5].field == "phone"  # order 1002: "a phone or an email is required"
    assert lines[8] == RowProblem(
        8, "Financial Status", "order #1005 is refunded: only paid orders are followed up"
    )
    assert lines[9].message == "order #1006 is pending: only paid orders are followed up"
    assert lines[10] == RowProblem(10, "Cancelled at", "order #1007 was cancelled")
    # Every line of a refused order comes back with the rejected rows, to fix as a whole.
    written = rejected_csv(check, lambda p: p.message, "rejected because")
    assert written.count("#1002") == 1 and written.splitlines()[0].endswith("rejected because")


def test_a_woocommerce_export_reads_completed_orders(frozen: None) -> None:
    text = as_csv(
        WOOCOMMERCE_HEADER,
        [
            woocommerce_line(
                1042,
                items=(
                    "name:Detergente|product_id:3|sku:DET-1|quantity:3|total:60.00",
                    "name:Cocina 4 hornillas|product_id:9|sku:COC-4|quantity:1|total:899.00",
                ),
                total="959.00",
                date="11/05/2026 10:00:00",  # the export's month-first dates
            ),
            woocommerce_line(1043, status="processing"),
            woocommerce_line(1044, phone="", currency="USD"),
        ],
    )
    check = check_sales_csv(text, defaults(), now=NOW)
    assert check.source == "woocommerce"
    sales = {sale.external_id: sale for _line, sale in check.sales}
    assert sorted(sales) == ["woocommerce:1042", "woocommerce:1044"]
    order = sales["woocommerce:1042"]
    assert order.product_sku == "COC-4" and order.amount == Decimal("959.00")
    assert order.phone == "+51987654321" and order.customer_name == "Ana Díaz"
    assert order.sold_at == datetime(2026, 11, 5, 15, 0, tzinfo=UTC)  # 10:00 in Lima
    assert order.attributes["items"][0] == {
        "sku": "DET-1",
        "name": "Detergente",
        "quantity": 3,
        "unit_price": "20.00",
    }
    assert sales["woocommerce:1044"].phone is None
    assert check.problems == [
        RowProblem(3, "status", "order 1043 is processing: only completed orders are followed up")
    ]


def test_importing_a_shopify_export_twice_changes_nothing(frozen: None, session: Session) -> None:
    install_defaults(session, NOW)
    session.commit()
    config = defaults()
    first = import_sales(
        session,
        check_sales_csv(_shopify_file(), config, now=NOW),
        config=config,
        now=NOW,
        actor="test",
    )
    assert (first.created, first.existing) == (3, 0)
    counts = [session.scalar(select(func.count()).select_from(m)) for m in (Sale, FollowUp)]
    again = import_sales(
        session,
        check_sales_csv(_shopify_file(), config, now=NOW),
        config=config,
        now=NOW,
        actor="test",
    )
    assert (again.created, again.existing) == (0, 3)
    assert [session.scalar(select(func.count()).select_from(m)) for m in (Sale, FollowUp)] == counts
    # Only the SKUs of the orders' main items make products (bags are no product to ask about).
    assert set(session.scalars(select(Product.sku))) == {"LAV-9", "TV-55"}


def test_hostile_exports_are_refused_order_by_order(frozen: None) -> None:
    huge = "x" * 100_000
    shopify = as_csv(
        SHOPIFY_HEADER,
        [
            *shopify_lines(2001, items=(("A-1", "Uno", 1, "10.00"), ("A-2", "Dos", 1, "1e999999"))),
            *shopify_lines(2002, items=(("B-1", "Uno", 1, "10.00"),)),
            *shopify_lines(2003, items=(("C-1", huge, 1, "10.00"),)),
        ],
    ).replace(",1,Uno,10.00,,B-1,", ",dos,Uno,10.00,,B-1,")
    check = check_sales_csv(shopify, defaults(), now=NOW)
    assert check.problems[:2] == [
        RowProblem(2, "Lineitem price", "'1e999999' is not a price (such as 1899.00)"),
        RowProblem(4, "Lineitem quantity", "'dos' is not a quantity (a whole number such as 1)"),
    ]
    # A name longer than any column is cut for the product, and kept whole with the items.
    (_, sale), *_ = check.sales
    assert len(sale.product_name or "") == 200 and sale.attributes["items"][0]["name"] == huge
    assert check.rejected_lines == [2, 4] and sorted(check.rejected) == [2, 3, 4]
    woo = as_csv(
        WOOCOMMERCE_HEADER,
        [
            woocommerce_line(3001, items=("%%%|||",)),
            woocommerce_line(3002, items=("name:Cocina|quantity:-1|total:5",)),
            woocommerce_line(3003, items=("name:Cocina|quantity:2|total:=HYPERLINK()",)),
        ],
    )
    problems = check_sales_csv(woo, defaults(), now=NOW).problems
    assert [(p.line, p.field) for p in problems] == [(n, "line_item_1") for n in (2, 3, 4)]


def _large_shopify_export(paid_at: str) -> str:
    """Orders of 1 to 3 items, every sixth refused (cancelled, unpaid, a bad item), with a row
    cut short among them."""
    lines = []
    for n in range(40):
        items = [(f"P-{k}", f"Producto {k}", 1, f"{10 + k}.00") for k in range(1 + n % 3)]
        if n % 6 == 5:
            items[-1] = ("P-9", "Roto", 0, "10.00")
        lines += shopify_lines(
            1000 + n,
            items=items,
            email=f"c{n}@example.pe",
            phone=f"+5198765{n:04d}",
            status="pending" if n % 6 == 1 else "paid",
            cancelled_at="2026-11-21 09:00:00 -0500" if n % 6 == 3 else "",
            paid_at=paid_at.format(day=1 + n % 28),
        )
    text = as_csv(SHOPIFY_HEADER, lines).splitlines()
    return "\n".join([*text[:30], "#9999,cut short", *text[30:]]) + "\n"


def _large_woocommerce_export() -> str:
    lines = [
        woocommerce_line(
            3000 + n,
            status="processing" if n % 6 == 1 else "completed",
            email=f"w{n}@example.pe",
            phone=f"98765{n:04d}",
            items=(f"name:Cocina|quantity:{n % 4}|total:10",),
        )
        for n in range(40)
    ]
    return as_csv(WOOCOMMERCE_HEADER, lines)


def _outcome(check: ImportCheck) -> tuple[object, ...]:
    return check.sales, check.problems, check.rejected, check.date_order, check.rows


@pytest.mark.parametrize(
    "text",
    [_large_shopify_export("2026-11-{day:02d} 15:30:12 -0500"), _large_woocommerce_export()],
    ids=["shopify", "woocommerce"],
)
def test_a_large_export_is_read_on_every_core_with_the_same_result(
    frozen: None, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """Its orders are read in parts by other processes (real ones), an order's lines never
    split between two, and the outcome is line for line the one read here alone."""
    alone = check_sales_csv(text, defaults(), now=NOW)
    assert len(alone.sales) > 15 and len(alone.problems) > 10
    monkeypatch.setattr(csv_import, "PARALLEL_FROM", 10)
    monkeypatch.setattr(csv_import, "PARALLEL_CHUNK", 7)
    narrowed: list[int] = []
    narrow = shop_exports.narrowed

    def counted(*args: Any) -> Any:
        narrowed.append(1)
        return narrow(*args)

    monkeypatch.setattr(shop_exports, "narrowed", counted)
    shared = check_sales_csv(text, defaults(), now=NOW)
    assert narrowed == [1]  # the orders were read in parts
    assert _outcome(shared) == _outcome(alone)


def test_a_large_export_is_stored_while_its_parts_are_read(
    frozen: None, monkeypatch: pytest.MonkeyPatch, session: Session
) -> None:
    """As `postventa import-sales` runs it: the helpers read and check the orders, this process
    stores each chunk of sales as it comes, and what is stored is what the file holds."""
    install_defaults(session, NOW)
    session.commit()
    text = _large_shopify_export("2026-11-{day:02d} 15:30:12 -0500")
    alone = check_sales_csv(text, defaults(), now=NOW)
    monkeypatch.setattr(csv_import, "PARALLEL_FROM", 10)
    monkeypatch.setattr(csv_import, "PARALLEL_CHUNK", 7)
    storing = Storing(session, config=defaults(), now=NOW, actor="t", chunk=5)
    check = check_table(read_table(text), defaults(), now=NOW, storing=storing)
    assert _outcome(check) == _outcome(alone)
    done = storing.result()
    assert (done.created, done.existing, done.failure) == (len(alone.sales), 0, None)
    stored = session.execute(select(Sale.external_id, Sale.sold_at, Sale.amount)).all()
    assert sorted(stored) == sorted(
        (sale.external_id, sale.sold_at, sale.amount) for _line, sale in alone.sales
    )


def test_an_order_lies_in_one_part_however_the_rows_are_cut() -> None:
    header = ["Name", "Lineitem sku"]
    rows = [(line, (f"#{line // 3}", "S")) for line in range(2, 40)]  # orders of 3 lines
    for size in (1, 2, 3, 7):
        parts = list(shop_exports.order_parts(header, rows, "shopify", size))
        assert [row for part in parts for row in part] == rows
        names = [{cells[0] for _line, cells in part} for part in parts]
        assert all(not a & b for a, b in zip(names, names[1:], strict=False))
        assert all(len(part) >= size for part in parts[:-1])
    assert [len(p) for p in shop_exports.order_parts(header, rows, "woocommerce", 7)][:2] == [7, 7]


def test_a_time_is_seen_as_a_spreadsheet_date_as_an_order_reads_it() -> None:
    """A cell as our rejected rows' file guards it (`'` before a leading tab) is read as the
    date it holds, so it needs the file's date order as any other."""
    header = ["Name", "Created at", "Paid at"]
    for cell, dated in [("'\t13/11/2026", True), (" 13/11/2026 ", True), ("2026-11-13", False)]:
        rows = [(2, ("#1", "2026-11-13 10:00:00 -0500", "")), (3, ("#2", cell, ""))]
        assert shop_exports.spreadsheet_dated(header, rows, "shopify") is dated, cell


def test_an_export_edited_in_a_spreadsheet_is_read_in_its_date_order(
    frozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its times written as a spreadsheet writes dates (`13/11/2026 15:30`), a day or a month
    first as the whole file shows: every order is read before any is checked, as a small file."""
    text = _large_shopify_export("{day:02d}/11/2026 15:30")
    alone = check_sales_csv(text, defaults(), now=NOW)
    monkeypatch.setattr(csv_import, "PARALLEL_FROM", 10)
    monkeypatch.setattr(csv_import, "PARALLEL_CHUNK", 7)
    shared = check_sales_csv(text, defaults(), now=NOW)
    assert _outcome(shared) == _outcome(alone)
    assert shared.date_order is not None and shared.date_order.evidence == "13/11/2026 15:30"
    days = {(sale.sold_at.month, sale.sold_at.day) for _line, sale in shared.sales}
    assert {(11, 5), (11, 11)} <= days and {month for month, _ in days} == {11}  # not May 11
