"""Recording a sale: once per external id, reusing the customer and the product."""

from __future__ import annotations

import gc
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from scheduler.collector import PAUSE_FROM
from scheduler.config import Config
from scheduler.db import make_session_factory
from scheduler.models import AuditEntry, Customer, Product, Sale
from scheduler.sending import planning
from scheduler.sending import sales as sales_module
from scheduler.sending.sales import record_sale, record_sales
from tests.factories import NOW
from tests.factories import sale_input as sale


def test_same_external_id_is_recorded_once(session: Session, config: Config) -> None:
    first, created = record_sale(session, sale("S-1"), config=config, now=NOW, actor="api")
    again, created_again = record_sale(
        session, sale("S-1", amount=Decimal(1)), config=config, now=NOW, actor="api"
    )
    assert (created, created_again) == (True, False)
    assert again.id == first.id and again.amount == Decimal("1899.00")
    session.commit()
    assert session.scalar(select(func.count()).select_from(Sale)) == 1
    stored = session.scalars(select(Sale)).one()
    assert stored.attributes == {"store": "Miraflores"}
    assert session.scalars(select(AuditEntry.action)).all() == ["sale.record"]


def test_customer_is_found_by_phone_then_email(session: Session, config: Config) -> None:
    record_sale(session, sale("S-1", email="rosa@example.pe"), config=config, now=NOW, actor="api")
    record_sale(session, sale("S-2"), config=config, now=NOW, actor="api")
    record_sale(
        session,
        sale("S-3", phone=None, email="rosa@example.pe"),
        config=config,
        now=NOW,
        actor="api",
    )
    record_sale(
        session,
        sale("S-4", phone="+51987654329", customer_name="Otra"),
        config=config,
        now=NOW,
        actor="x",
    )
    session.commit()
    names = session.scalars(select(Customer.name).order_by(Customer.id)).all()
    assert names == ["Rosa Quispe", "Otra"]
    assert session.scalar(select(func.count()).select_from(Product)) == 1


def test_racing_inserts_of_one_external_id_keep_one_sale(engine: Engine, config: Config) -> None:
    factory = make_session_factory(engine)
    with factory() as first, factory() as second:
        a, created_a = record_sale(first, sale("S-1"), config=config, now=NOW, actor="one")
        first.commit()
        # The second session looked before the first committed on a real race; here it finds it.
        b, created_b = record_sale(second, sale("S-1"), config=config, now=NOW, actor="two")
        second.commit()
    assert (created_a, created_b) == (True, False)
    assert a.id == b.id


def test_a_batch_keeps_input_order_and_shares_customers(session: Session, config: Config) -> None:
    record_sale(session, sale("OLD"), config=config, now=NOW, actor="api")
    batch = [
        sale("A", phone="+51911111111", customer_name="Luis"),
        sale("OLD"),  # already recorded: returned, not created
        sale("B", phone="+51911111111", customer_name="Luis"),  # same customer as A
        sale("A", amount=Decimal(5)),  # repeated in the batch: the first wins
        sale("C", phone=None, email="ana@example.pe", customer_name="Ana", product_sku="NEW-1"),
    ]
    results = record_sales(session, batch, config=config, now=NOW, actor="import")
    session.commit()
    assert [(row.external_id, created) for row, created in results] == [
        ("A", True),
        ("OLD", False),
        ("B", True),
        ("A", False),
        ("C", True),
    ]
    assert results[0][0].id == results[3][0].id and results[3][0].amount == Decimal("1899.00")
    assert results[0][0].customer_id == results[2][0].customer_id
    names = session.scalars(select(Customer.name).order_by(Customer.name)).all()
    assert names == ["Ana", "Luis", "Rosa Quispe"]
    assert session.scalars(select(Product.sku).order_by(Product.sku)).all() == ["LAV-9", "NEW-1"]
    audited = session.scalars(
        select(AuditEntry.details).where(AuditEntry.actor == "import").order_by(AuditEntry.id)
    ).all()
    assert [entry["external_id"] for entry in audited] == ["A", "B", "C"]


def test_a_batch_that_loses_a_race_falls_back_sale_by_sale(
    engine: Engine, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = make_session_factory(engine)
    with factory() as winner, factory() as loser:
        record_sale(winner, sale("S-2"), config=config, now=NOW, actor="one")
        winner.commit()
        # `loser` looked before the winner committed: make it believe S-2 is new.
        monkeypatch.setattr(sales_module, "_existing", lambda session, ids: {})
        results = record_sales(
            loser, [sale("S-1"), sale("S-2")], config=config, now=NOW, actor="two"
        )
        loser.commit()
    assert [(row.external_id, created) for row, created in results] == [
        ("S-1", True),
        ("S-2", False),
    ]
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Sale)) == 2


def test_customers_a_parallel_request_inserted_first_are_read_back(
    engine: Engine, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new customers' insert returns those it made; one whose phone or email another
    request inserted first (ON CONFLICT DO NOTHING: nothing returned) is read back, theirs."""
    factory = make_session_factory(engine)
    with factory() as winner:
        first, _ = record_sale(winner, sale("S-1", email="rosa@example.pe"), **_as(config, "one"))
        winner.commit()
        rosa = first.customer_id
    looked = sales_module._customer_rows
    calls: list[int] = []

    def before_it_committed(session: Session, phones: Any, emails: Any) -> Any:
        """The first lookup, as a request that looked before the winner committed."""
        calls.append(len(phones) + len(emails))
        return {} if len(calls) == 1 else looked(session, phones, emails)

    monkeypatch.setattr(sales_module, "_customer_rows", before_it_committed)
    batch = [
        sale("S-2"),  # Rosa's phone: hers
        sale("S-3", phone=None, email="rosa@example.pe"),  # her email: hers
        sale("S-4", phone="+51911111111", customer_name="Luis"),  # new: inserted, returned
    ]
    with factory() as loser:
        results = record_sales(loser, batch, **_as(config, "two"))
        loser.commit()
        customers = [row.customer_id for row, _created in results]
    assert customers[:2] == [rosa, rosa] and customers[2] != rosa
    assert calls == [3, 2]  # the second lookup reads only what the insert did not return
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 2
        luis = session.get(Customer, customers[2])
        assert luis is not None and luis.created_at == NOW and luis.name == "Luis"


def _as(config: Config, actor: str) -> dict[str, Any]:
    return {"config": config, "now": NOW, "actor": actor}


def test_the_collector_waits_while_a_large_batch_is_recorded(
    session: Session, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    collecting: list[bool] = []

    def plan_sales(*args: Any, **kwargs: Any) -> planning.SalesPlanned:
        collecting.append(gc.isenabled())
        return planning.plan_sales(*args, **kwargs)

    monkeypatch.setattr(sales_module, "plan_sales", plan_sales)
    gc.enable()
    batch = [sale(f"S-{n}", phone=f"+5198711{n:04d}") for n in range(PAUSE_FROM)]
    results = record_sales(session, batch, config=config, now=NOW, actor="import")
    record_sale(session, sale("S-ONE", phone="+51911111111"), config=config, now=NOW, actor="api")
    assert collecting == [False, True] and gc.isenabled()
    assert [created for _sale, created in results] == [True] * PAUSE_FROM
