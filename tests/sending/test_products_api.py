"""The products API: the list by SKU with a cursor, a product changed whole, and sales that
say what their product is (`product.category`, `product.renewal_days`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from scheduler.models import AuditEntry, Product
from tests.factories import NOW

ODD_SKU = "TV 55/4K; DROP TABLE products;--"


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def call(client: FlaskClient, method: str, path: str, token: str, **kw: Any) -> TestResponse:
    return client.open(path, method=method, headers={"Authorization": f"Bearer {token}"}, **kw)


def sale(external_id: str, sku: str, **product: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "sold_at": "2026-11-22T21:15:00-05:00",
        "customer": {"name": "Rosa Quispe", "phone": "987654321"},
        "product": {"sku": sku, "name": "Lavadora", **product},
    }


def whole(**changes: Any) -> dict[str, Any]:
    return {"name": "Lavadora", "category": None, "renewal_days": None, "cadence": None} | changes


@pytest.fixture
def products(client: FlaskClient, token: str) -> list[str]:
    skus = ["A-1", "B-2", ODD_SKU, "Ñ-3"]
    for number, sku in enumerate(skus):
        assert (
            call(client, "POST", "/api/sales", token, json=sale(f"S-{number}", sku)).status_code
            == 201
        )
    return skus


def test_the_list_is_by_sku_and_a_cursor_walks_it_to_the_end(
    client: FlaskClient, token: str, products: list[str]
) -> None:
    seen: list[str] = []
    path = "/api/products?limit=3"
    while True:
        answer = call(client, "GET", path, token)
        assert answer.status_code == 200
        body = answer.get_json()
        seen += [item["sku"] for item in body["products"]]
        if body["next_cursor"] is None:
            break
        path = f"/api/products?limit=3&cursor={quote(body['next_cursor'])}"
    # Every product once, in the database's order of SKUs (its collation's).
    assert len(seen) == len(set(seen)) and set(seen) == set(products)
    first = call(client, "GET", "/api/products", token).get_json()["products"][0]
    assert first == {
        "sku": "A-1",
        "name": "Lavadora",
        "category": None,
        "renewal_days": None,
        "cadence": None,
        "follows": {"cadence": "Default", "because": "default"},
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("cursor=%FF%00", "cursor"),
        ("cursor=ñ", "cursor"),
    ],
)
def test_a_bad_limit_or_cursor_is_a_400_naming_it(
    client: FlaskClient, token: str, query: str, field: str
) -> None:
    answer = call(client, "GET", f"/api/products?{query}", token)
    assert answer.status_code == 400
    assert [e["field"] for e in answer.get_json()["errors"]] == [field]


def test_put_changes_the_whole_product_and_plans_the_renewal(
    client: FlaskClient, token: str, products: list[str], session: Session
) -> None:
    answer = call(
        client,
        "PUT",
        f"/api/products/{quote(ODD_SKU)}",
        token,
        json=whole(name="Tele 55", category="Teles", renewal_days=730, sku=ODD_SKU),
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {
        "sku": ODD_SKU,
        "name": "Tele 55",
        "category": "Teles",
        "renewal_days": 730,
        "cadence": None,
        "follows": {"cadence": "Default", "because": "default"},
    }
    product = session.scalars(select(Product).where(Product.sku == ODD_SKU)).one()
    assert (product.name, product.renewal_days) == ("Tele 55", 730)
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "product.update"))
    assert entry.actor == "api:tienda-online"
    assert entry.details["follow_ups"]["added"] == 1  # the renewal reminder of its sale
    cleared = call(client, "PUT", f"/api/products/{quote(ODD_SKU)}", token, json=whole())
    assert cleared.get_json()["renewal_days"] is None and cleared.get_json()["category"] is None


def test_put_refuses_everything_wrong_at_once_and_changes_nothing(
    client: FlaskClient, token: str, products: list[str], session: Session
) -> None:
    answer = call(
        client,
        "PUT",
        "/api/products/A-1",
        token,
        json={"name": "x" * 10_000, "renewal_days": -5, "colour": "red", "sku": "Z-9"},
    )
    assert answer.status_code == 422
    assert [e["field"] for e in answer.get_json()["errors"]] == [
        "colour",
        "category",
        "cadence",
        "sku",
    ]
    answer = call(
        client,
        "PUT",
        "/api/products/A-1",
        token,
        json=whole(name="x" * 10_000, renewal_days="365 días", cadence="Nope", category=7),
    )
    assert answer.status_code == 422
    assert answer.get_json()["errors"] == [
        {"field": "name", "message": "must be at most 200 characters (got 10000)"},
        {"field": "category", "message": "must be text"},
        {"field": "renewal_days", "message": "must be a whole number of days, such as 365"},
        {"field": "cadence", "message": "no cadence is called 'Nope'"},
    ]
    for bad in (365.5, 0, 3651, True):
        refused = call(client, "PUT", "/api/products/A-1", token, json=whole(renewal_days=bad))
        assert refused.status_code == 422, bad
    assert call(client, "PUT", "/api/products/A-1", token, data="[1]").status_code == 400
    nested = call(
        client,
        "PUT",
        "/api/products/A-1",
        token,
        data="[" * 100_000,
        content_type="application/json",
    )
    assert nested.status_code == 400
    session.rollback()
    assert session.scalars(select(Product).where(Product.sku == "A-1")).one().renewal_days is None


def test_put_never_creates_a_product(client: FlaskClient, token: str, session: Session) -> None:
    answer = call(client, "PUT", "/api/products/' OR '1'='1", token, json=whole())
    assert answer.status_code == 404
    assert "products are made by sales" in answer.get_json()["errors"][0]["message"]
    assert session.scalars(select(Product)).all() == []


def test_products_need_a_token(client: FlaskClient) -> None:
    assert client.get("/api/products").status_code == 401
    assert client.put("/api/products/A-1", json=whole()).status_code == 401


def test_parallel_puts_on_one_product_take_turns(
    app: Flask, token: str, products: list[str], session: Session
) -> None:
    start = threading.Barrier(8)
    statuses: list[int] = []

    def put(days: int) -> None:
        client = app.test_client()
        start.wait()
        answer = call(client, "PUT", "/api/products/A-1", token, json=whole(renewal_days=days))
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=put, args=(30 * (n + 1),)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * 8
    session.rollback()
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "product.update").order_by(AuditEntry.id)
    ).all()
    # Each change is audited from what the one before it left: a chain, nothing lost.
    chain = [entry.details["changes"]["renewal_days"] for entry in entries]
    assert chain[0][0] is None
    assert all(before[1] == after[0] for before, after in zip(chain, chain[1:], strict=False))
    final = session.scalars(select(Product).where(Product.sku == "A-1")).one().renewal_days
    assert final == chain[-1][1]


def test_a_sale_says_its_products_category_and_renewal(
    client: FlaskClient, token: str, session: Session
) -> None:
    answer = call(
        client,
        "POST",
        "/api/sales",
        token,
        json=sale("S-1", "MANT-1Y", category="Servicios", renewal_days=365),
    )
    assert answer.status_code == 201
    steps = [item["step"] for item in answer.get_json()["follow_ups"]]
    assert "renewal-reminder" in steps
    refused = call(
        client,
        "POST",
        "/api/sales",
        token,
        json=sale("S-2", "MANT-1Y", category="x" * 101, renewal_days="un año"),
    )
    assert refused.status_code == 422
    assert [e["field"] for e in refused.get_json()["errors"]] == [
        "product.category",
        "product.renewal_days",
    ]
    # A later sale's word changes the product, and the earlier sale's reminder moves with it.
    moved = call(client, "POST", "/api/sales", token, json=sale("S-3", "MANT-1Y", renewal_days=30))
    assert moved.status_code == 201
    product = session.scalars(select(Product)).one()
    assert (product.category, product.renewal_days) == ("Servicios", 30)
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "product.update"))
    assert entry.details["changes"] == {"renewal_days": [365, 30]}
    assert entry.details["follow_ups"]["redated"] == 1
