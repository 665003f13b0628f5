"""The customer list: latest purchase (kept by the database) or name first, a page at a time by
keyset, with the latest sale, the next follow-up and an open case beside each name."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.customer_list import After, NameCursor, Sort, beside, customer_page, read_after
from scheduler.defaults import install_defaults
from scheduler.lifecycle import CaseStatus, FollowUpStatus
from scheduler.models import Case, Customer, FollowUp, Sale
from scheduler.paging import CursorError
from scheduler.sending.sales import record_sale, record_sales
from tests.complaints import frozen
from tests.factories import NOW, sale_input

__all__ = ["frozen"]


@pytest.fixture
def staff_client(frozen: object, staff_client: FlaskClient) -> FlaskClient:
    return staff_client


def _buy(
    session: Session, config: Config, number: int, days_ago: int, name: str, buyer: int = 0
) -> Customer:
    """Sale S-`number`, by the customer of phone number `buyer` (the sale's own by default)."""
    sale, _new = record_sale(
        session,
        sale_input(
            f"S-{number}",
            customer_name=name,
            phone=f"+5198700{buyer or number:04d}",
            sold_at=NOW - timedelta(days=days_ago),
        ),
        config=config,
        now=NOW,
        actor="test",
    )
    return sale.customer


def _shop(session: Session, config: Config) -> list[Customer]:
    """Seven customers: five bought (two on one day), two only wrote in."""
    install_defaults(session, NOW)
    bought = [
        _buy(session, config, number, days_ago, name)
        for number, days_ago, name in [
            (1, 30, "Ana Torres"),
            (2, 3, "Beto Ríos"),
            (3, 3, "Carla Díaz"),
            (4, 90, "Dora Paz"),
            (5, 10, "Eva Luna"),
        ]
    ]
    wrote = [
        Customer(name=name, phone=f"+5191100000{n}", created_at=NOW)
        for n, name in ((1, "Fausto Vera"), (2, "Gina Solis"))
    ]
    session.add_all(wrote)
    session.commit()
    return [*bought, *wrote]


def _every_page(session: Session, sort: Sort, size: int, text: str = "") -> list[list[str]]:
    pages: list[list[str]] = []
    after: After | None = None
    while True:
        page = customer_page(session, text, sort=sort, after=after, size=size)
        pages.append([customer.name for customer in page.customers])
        if page.following is None:
            return pages
        after = read_after(sort, str(page.following))


def test_the_latest_purchase_comes_first_and_those_who_never_bought_last(
    session: Session, config: Config
) -> None:
    shop = _shop(session, config)
    wrote = sorted(shop[5:], key=lambda customer: -customer.id)
    pages = _every_page(session, Sort.LATEST, size=2)
    assert pages == [
        ["Carla Díaz", "Beto Ríos"],  # one day: the later id first
        ["Eva Luna", "Ana Torres"],
        ["Dora Paz", wrote[0].name],
        [wrote[1].name],
    ]
    assert customer_page(session, size=2).matching == 7


def test_by_name_every_customer_once_in_order(session: Session, config: Config) -> None:
    shop = _shop(session, config)
    pages = _every_page(session, Sort.NAME, size=3)
    assert [name for page in pages for name in page] == sorted(c.name for c in shop)
    assert [len(page) for page in pages] == [3, 3, 1]


def test_a_page_by_name_cut_while_its_last_customer_is_renamed_skips_no_one(
    session: Session, config: Config
) -> None:
    shop = _shop(session, config)
    first = customer_page(session, sort=Sort.NAME, size=3)
    assert [c.name for c in first.customers] == ["Ana Torres", "Beto Ríos", "Carla Díaz"]
    carla = session.get_one(Customer, first.customers[-1].id)
    carla.name = "Zoila Díaz"
    session.commit()
    rest = customer_page(session, sort=Sort.NAME, after=first.following, size=10)
    assert [c.name for c in rest.customers] == [
        "Dora Paz",
        "Eva Luna",
        "Fausto Vera",
        "Gina Solis",
        "Zoila Díaz",
    ]
    assert len(shop) == 7


def test_a_page_cut_while_a_customer_buys_again_neither_repeats_nor_hides_one(
    session: Session, config: Config
) -> None:
    _shop(session, config)
    first = customer_page(session, sort=Sort.LATEST, size=2)
    assert first.following is not None
    _buy(session, config, 9, 0, "Dora Paz", buyer=4)  # Dora's second sale: she moves to the top
    session.commit()
    rest = customer_page(session, sort=Sort.LATEST, after=first.following, size=10)
    shown = [c.name for c in first.customers] + [c.name for c in rest.customers]
    assert len(shown) == len(set(shown)) == 6  # Dora is above the page now; no one twice
    assert "Dora Paz" not in shown


def test_the_database_keeps_each_customers_latest_sale(session: Session, config: Config) -> None:
    """Written by triggers on `sales`: an older sale changes nothing, a newer one moves it, a
    sale removed gives back the one before, and the last removed leaves none."""
    install_defaults(session, NOW)
    rosa = _buy(session, config, 1, 10, "Rosa Quispe")
    session.commit()

    def latest() -> object:
        return session.scalar(select(Customer.last_sold_at).where(Customer.id == rosa.id))

    assert latest() == NOW - timedelta(days=10)
    _buy(session, config, 2, 20, "Rosa Quispe", buyer=1)
    assert latest() == NOW - timedelta(days=10)
    _buy(session, config, 3, 1, "Rosa Quispe", buyer=1)
    assert latest() == NOW - timedelta(days=1)
    session.execute(update(Sale).where(Sale.external_id == "S-2").values(sold_at=NOW))
    assert latest() == NOW
    session.execute(delete(FollowUp))
    session.execute(delete(Sale).where(Sale.external_id == "S-2"))
    assert latest() == NOW - timedelta(days=1)
    session.execute(delete(Sale))
    assert latest() is None


def test_one_insert_of_a_customers_sales_in_any_order_keeps_the_latest(
    session: Session, config: Config
) -> None:
    """Sales written together, by one statement: each moves the latest forward or not at all."""
    install_defaults(session, NOW)
    days = (5, 30, 2, 9)  # the third is the latest
    batch = [
        sale_input(f"B-{n}", phone="+51987000001", sold_at=NOW - timedelta(days=ago))
        for n, ago in enumerate(days)
    ]
    results = record_sales(session, batch, config=config, now=NOW, actor="test")
    assert len({sale.customer_id for sale, _new in results}) == 1
    latest = select(Customer.last_sold_at).where(Customer.id == results[0][0].customer_id)
    assert session.scalar(latest) == NOW - timedelta(days=2)
    later = [  # an older sale and one of the same moment change nothing
        sale_input(f"C-{n}", phone="+51987000001", sold_at=NOW - timedelta(days=ago))
        for n, ago in enumerate((40, 2))
    ]
    record_sales(session, later, config=config, now=NOW, actor="test")
    assert session.scalar(latest) == NOW - timedelta(days=2)


def test_beside_each_name_the_latest_sale_the_next_follow_up_and_an_open_case(
    session: Session, config: Config
) -> None:
    shop = _shop(session, config)
    eva = shop[4]
    waiting = session.scalars(
        select(FollowUp)
        .where(FollowUp.customer_id == eva.id, FollowUp.status == FollowUpStatus.SCHEDULED)
        .order_by(FollowUp.due_at)
    ).all()
    assert waiting, "the default cadence plans Eva's follow-ups"
    case = Case(
        customer_id=eva.id,
        reason="complaint",
        opened_at=NOW,
        first_response_due_at=NOW + timedelta(hours=4),
        status=CaseStatus.OPEN,
    )
    session.add(case)
    session.commit()
    rows = beside(session, shop)
    latest = rows[eva.id].latest_sale
    assert latest is not None and latest.external_id == "S-5"
    assert rows[eva.id].product == "Lavadora"
    assert rows[eva.id].next_due == waiting[0].due_at
    assert (rows[eva.id].open_case, rows[eva.id].open_cases) == (case.id, 1)
    assert rows[shop[0].id].open_case is None
    assert rows[shop[5].id].latest_sale is None and rows[shop[5].id].next_due is None


def test_a_cursor_of_one_order_is_refused_by_the_other(session: Session) -> None:
    with pytest.raises(CursorError):
        read_after(Sort.NAME, "1795428000000000.42")
    with pytest.raises(CursorError):
        read_after(Sort.LATEST, "42.Rosa")
    assert read_after(Sort.NAME, "42.Rosa Quispe") == NameCursor("Rosa Quispe", 42)
    with pytest.raises(CursorError):
        read_after(Sort.NAME, "42.Rosa\x00")


def test_the_list_pages_sorts_and_shows_the_columns(
    session: Session, config: Config, staff_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _shop(session, config)
    monkeypatch.setattr("scheduler.customer_list.PAGE", 4)
    first = staff_client.get("/customers").get_data(as_text=True)
    assert "7 customers" in first
    assert first.index("Eva Luna") < first.index("Ana Torres")
    assert "S-5" in first and "Lavadora" in first
    following = re.search(r'href="(/customers\?after=[^"]+)" rel="next"', first)
    assert following is not None
    second = staff_client.get(following.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "Dora Paz" in second and "Eva Luna" not in second
    by_name = staff_client.get("/customers?sort=name").get_data(as_text=True)
    assert by_name.index("Ana Torres") < by_name.index("Beto Ríos") < by_name.index("Dora Paz")
    assert "Eva Luna" not in by_name  # the fifth by name is on the next page
    assert 'rel="next"' in by_name and "sort=name" in by_name


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=newest", "Sort:"),
        ("after=yesterday", "Page:"),
        ("sort=name&after=x.Ana", "Page:"),
        ("q=ana%00", "Search:"),
        ("q=" + "x" * 201, "Search:"),
    ],
)
def test_an_order_or_page_that_cannot_be_read_is_a_400_that_says_which(
    session: Session, config: Config, staff_client: FlaskClient, query: str, field: str
) -> None:
    _shop(session, config)
    response = staff_client.get(f"/customers?{query}")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert field in page
    assert "Eva Luna" in page  # the first page, below the message


def test_a_search_counts_so_far_then_says_more_than(
    session: Session, config: Config, staff_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search's matches are counted up to a bound (a rare word is one read of them all, not
    two); the whole list is always counted."""
    _shop(session, config)
    for where in ("scheduler.customer_list.COUNT_MOST", "web.customers.COUNT_MOST"):
        monkeypatch.setattr(where, 2)
    assert "More than 2 customers" in staff_client.get("/customers?q=a").get_data(as_text=True)
    found = staff_client.get("/customers?q=luna").get_data(as_text=True)
    assert "1 customer<" in found and "More than" not in found
    assert "7 customers" in staff_client.get("/customers").get_data(as_text=True)
