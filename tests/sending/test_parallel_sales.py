"""Sales that arrive at once: one customer per person and one product per SKU, whatever the
order in which parallel requests reach the database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from freezegun import freeze_time
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.models import Customer, FollowUp, Product, Sale
from scheduler.sending.sales import record_sale
from tests.factories import NOW
from tests.factories import sale_input as sale

PARALLEL = 20


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def _post_at_once(app: Flask, token: str, bodies: list[dict[str, Any]]) -> list[int]:
    """POST every body to /api/sales, each from its own thread and client, released together."""
    start = threading.Barrier(len(bodies))
    statuses: list[int] = [0] * len(bodies)

    def send(index: int) -> None:
        client = app.test_client()
        start.wait()
        answer = client.post(
            "/api/sales", json=bodies[index], headers={"Authorization": f"Bearer {token}"}
        )
        statuses[index] = answer.status_code

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


def _body(n: int, **customer: str) -> dict[str, Any]:
    return {
        "external_id": f"P-{n}",
        "sold_at": "2026-11-22T21:15:00-05:00",
        "customer": {"name": f"Rosa {n}", **customer},
        "product": {"sku": "NEW-SKU", "name": "Secadora"},
        "amount": "10.00",
        "currency": "PEN",
    }


def _count(session: Session, model: type[Any]) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_twenty_parallel_sales_of_one_new_phone_make_one_customer(
    app: Flask, token: str, session: Session
) -> None:
    statuses = _post_at_once(app, token, [_body(n, phone="987111222") for n in range(PARALLEL)])
    assert statuses == [201] * PARALLEL
    assert _count(session, Sale) == PARALLEL
    assert session.scalars(select(Customer.phone)).all() == ["+51987111222"]
    customer_ids = set(session.scalars(select(FollowUp.customer_id)))
    assert len(customer_ids) == 1  # one person, so one gap rule and one consent


def test_twenty_parallel_sales_of_one_new_sku_make_one_product(
    app: Flask, token: str, session: Session
) -> None:
    bodies = [_body(n, phone=f"98711{n:04d}") for n in range(PARALLEL)]
    statuses = _post_at_once(app, token, bodies)
    assert statuses == [201] * PARALLEL  # none lost to uq_products_sku
    assert _count(session, Sale) == PARALLEL and _count(session, Customer) == PARALLEL
    assert session.scalars(select(Product.sku)).all() == ["NEW-SKU"]


def test_parallel_sales_of_one_new_email_make_one_customer(
    app: Flask, token: str, session: Session
) -> None:
    bodies = [_body(n, email="ana@example.pe") for n in range(PARALLEL)]
    assert _post_at_once(app, token, bodies) == [201] * PARALLEL
    assert session.scalars(select(Customer.email)).all() == ["ana@example.pe"]
    assert _count(session, Sale) == PARALLEL


def test_the_phone_wins_when_phone_and_email_belong_to_two_customers(
    session: Session, config: Config
) -> None:
    """The number is what replies and STOPs by SMS arrive from: the sale goes with its owner."""
    by_phone, _ = record_sale(session, sale("A"), config=config, now=NOW, actor="t")
    by_email, _ = record_sale(
        session,
        sale("B", phone=None, email="rosa@example.pe", customer_name="Rosa"),
        config=config,
        now=NOW,
        actor="t",
    )
    both, _ = record_sale(
        session, sale("C", email="rosa@example.pe"), config=config, now=NOW, actor="t"
    )
    session.commit()
    assert by_phone.customer_id != by_email.customer_id
    assert both.customer_id == by_phone.customer_id
    assert _count(session, Customer) == 2
