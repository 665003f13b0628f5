"""The Products page: everyone sees which cadence each product follows and why; owners change
a product, and its sales already recorded follow."""

from __future__ import annotations

import html
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.defaults import install_defaults
from scheduler.models import FollowUp, Product
from scheduler.sending.sales import record_sales
from tests.browsing import fresh, submit
from tests.factories import NOW, sale_input

ODD = "TV 55/4K <b>&"


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with freeze_time(NOW):
        yield


@pytest.fixture
def catalogue(session: Session, config: Config) -> None:
    install_defaults(session, NOW)
    sales = [sale_input("S-1"), sale_input("S-2", product_sku=ODD, category="Teles")]
    sales += [
        sale_input(f"P-{n:03}", product_sku=f"P-{n:03}", product_name=f"Pieza {n}")
        for n in range(60)
    ]
    record_sales(session, sales, config=config, now=NOW, actor="test")
    session.commit()


def _edit_page(sku: str) -> str:
    return f"/products/{quote(sku)}"


def test_the_list_says_what_each_product_follows_and_pages_through_thousands(
    owner_client: FlaskClient, catalogue: None
) -> None:
    page = owner_client.get("/products").get_data(as_text=True)
    assert "LAV-9" in page and "P-000" in page and "P-048" in page
    assert "P-049" not in page  # 50 a page, by SKU
    assert "Default" in page and "(the default)" in page
    assert html.escape(ODD) not in page  # after the Ps: on the next page
    following = owner_client.get("/products?after=P-048").get_data(as_text=True)
    assert "P-049" in following and html.escape(ODD) in following
    assert "P-048" not in following
    assert "Next page" not in following
    found = owner_client.get("/products?q=55/4").get_data(as_text=True)
    assert html.escape(ODD) in found and "LAV-9" not in found
    assert "No products match." in owner_client.get("/products?q=%25%25").get_data(as_text=True)
    assert 'href="/products"' in owner_client.get("/inbox").get_data(as_text=True)  # the menu


def test_owner_sets_a_renewal_period_and_the_sales_get_their_reminder(
    owner_client: FlaskClient, catalogue: None, session: Session
) -> None:
    form = {"name": "Lavadora 9 kg", "category": "Línea blanca", "renewal_days": "365"}
    answer = submit(owner_client, _edit_page("LAV-9"), form, page=_edit_page("LAV-9"))
    assert answer.status_code == 302
    fresh(session)
    product = session.scalars(select(Product).where(Product.sku == "LAV-9")).one()
    assert (product.name, product.category, product.renewal_days) == (
        "Lavadora 9 kg",
        "Línea blanca",
        365,
    )
    assert product.cadence_id is None
    shown = owner_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Product saved. Follow-ups already planned: 0 re-dated, 0 cancelled, 1 added" in shown
    steps = session.scalars(select(FollowUp).where(FollowUp.sale_id == 1)).all()
    assert "renewal-reminder" in {row.step.key for row in steps}


def test_a_bad_change_is_shown_by_its_field_and_keeps_what_was_typed(
    owner_client: FlaskClient, catalogue: None, session: Session
) -> None:
    form = {
        "name": "Lavadora 9 kg",
        "category": "c" * 101,
        "renewal_days": "365 días",
        "cadence": "<script>nope</script>",
    }
    answer = submit(owner_client, _edit_page("LAV-9"), form, page=_edit_page("LAV-9"))
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert "Nothing was saved" in page
    assert "must be a whole number of days, such as 365" in page
    assert "must be at most 100 characters (got 101)" in page
    assert "no cadence is called" in page and "<script>nope" not in page
    assert 'value="Lavadora 9 kg"' in page and 'value="365 días"' in page
    fresh(session)
    assert session.scalars(select(Product).where(Product.sku == "LAV-9")).one().name == "Lavadora"


def test_a_product_with_an_odd_sku_has_its_page(
    owner_client: FlaskClient, catalogue: None, session: Session
) -> None:
    page = owner_client.get(_edit_page(ODD)).get_data(as_text=True)
    assert html.escape(ODD) in page and "(the default)" in page
    form = {"name": "Tele", "category": "", "renewal_days": "", "cadence": "Default"}
    answer = submit(owner_client, _edit_page(ODD), form, page=_edit_page(ODD))
    assert answer.status_code == 302
    assert "(chosen for it)" in owner_client.get(_edit_page(ODD)).get_data(as_text=True)
    assert owner_client.get(_edit_page("NOPE")).status_code == 404


def test_staff_look_at_products_but_cannot_change_them(
    staff_client: FlaskClient, catalogue: None, session: Session
) -> None:
    assert staff_client.get("/products").status_code == 200
    page = staff_client.get(_edit_page("LAV-9")).get_data(as_text=True)
    assert "Only an owner can change a product." in page and "Save the product" not in page
    form = {"name": "Hacked", "category": "", "renewal_days": "", "cadence": ""}
    answer = submit(staff_client, _edit_page("LAV-9"), form, page=_edit_page("LAV-9"))
    assert answer.status_code == 403
    fresh(session)
    assert session.scalars(select(Product).where(Product.sku == "LAV-9")).one().name == "Lavadora"
