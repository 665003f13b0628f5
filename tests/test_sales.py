"""Recording a sale: once per external id, reusing the customer and the product."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from scheduler.db import make_session_factory
from scheduler.models import AuditEntry, Customer, Product, Sale
from scheduler.sales import SaleInput, record_sale

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def sale(external_id: str, **changes: object) -> SaleInput:
    fields: dict[str, object] = {
        "external_id": external_id,
        "sold_at": NOW,
        "customer_name": "Rosa Quispe",
        "phone": "+51987654321",
        "product_sku": "LAV-9",
        "product_name": "Lavadora",
        "amount": Decimal("1899.00"),
        "currency": "PEN",
        "attributes": {"store": "Miraflores"},
    }
    fields.update(changes)
    return SaleInput(**fields)  # type: ignore[arg-type]


def test_same_external_id_is_recorded_once(session: Session) -> None:
    first, created = record_sale(session, sale("S-1"), now=NOW, actor="api")
    again, created_again = record_sale(
        session, sale("S-1", amount=Decimal(1)), now=NOW, actor="api"
    )
    assert (created, created_again) == (True, False)
    assert again.id == first.id and again.amount == Decimal("1899.00")
    session.commit()
    assert session.scalar(select(func.count()).select_from(Sale)) == 1
    stored = session.scalars(select(Sale)).one()
    assert stored.attributes == {"store": "Miraflores"}
    assert session.scalars(select(AuditEntry.action)).all() == ["sale.record"]


def test_customer_is_found_by_phone_then_email(session: Session) -> None:
    record_sale(session, sale("S-1", email="rosa@example.pe"), now=NOW, actor="api")
    record_sale(session, sale("S-2"), now=NOW, actor="api")
    record_sale(session, sale("S-3", phone=None, email="rosa@example.pe"), now=NOW, actor="api")
    record_sale(
        session, sale("S-4", phone="+51987654329", customer_name="Otra"), now=NOW, actor="x"
    )
    session.commit()
    names = session.scalars(select(Customer.name).order_by(Customer.id)).all()
    assert names == ["Rosa Quispe", "Otra"]
    assert session.scalar(select(func.count()).select_from(Product)) == 1


def test_racing_inserts_of_one_external_id_keep_one_sale(engine: Engine) -> None:
    factory = make_session_factory(engine)
    with factory() as first, factory() as second:
        a, created_a = record_sale(first, sale("S-1"), now=NOW, actor="one")
        first.commit()
        # The second session looked before the first committed on a real race; here it finds it.
        b, created_b = record_sale(second, sale("S-1"), now=NOW, actor="two")
        second.commit()
    assert (created_a, created_b) == (True, False)
    assert a.id == b.id
