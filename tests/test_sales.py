"""Recording a sale: once per external id, reusing the customer and the product."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.db import make_session_factory
from scheduler.models import AuditEntry, Customer, Product, Sale
from scheduler.sales import record_sale
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
