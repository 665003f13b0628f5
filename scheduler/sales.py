"""Recording sales: the customer and product they belong to, once per external id."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.config import Config
from scheduler.models import Customer, Product, Sale
from scheduler.scheduling import schedule_sale


@dataclass(frozen=True)
class SaleInput:
    """A validated sale as it arrives from the API, a CSV row or the admin form.

    `phone` is already E.164 and `sold_at` aware: validation happens before this point.
    """

    external_id: str
    sold_at: datetime
    customer_name: str
    phone: str | None = None
    email: str | None = None
    locale: str | None = None
    timezone: str | None = None
    product_sku: str | None = None
    product_name: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


def _find_or_add_customer(session: Session, sale: SaleInput, now: datetime) -> Customer:
    """The customer with this phone, else this email, else a new one."""
    for column, value in ((Customer.phone, sale.phone), (Customer.email, sale.email)):
        if value:
            found = session.scalars(select(Customer).where(column == value).order_by(Customer.id))
            customer = found.first()
            if customer is not None:
                return customer
    customer = Customer(
        name=sale.customer_name,
        phone=sale.phone,
        email=sale.email,
        locale=sale.locale,
        timezone=sale.timezone,
        created_at=now,
    )
    session.add(customer)
    return customer


def _find_or_add_product(session: Session, sale: SaleInput) -> Product | None:
    if not sale.product_sku:
        return None
    product = session.scalar(select(Product).where(Product.sku == sale.product_sku))
    if product is None:
        product = Product(sku=sale.product_sku, name=sale.product_name or sale.product_sku)
        session.add(product)
    return product


def record_sale(
    session: Session, sale: SaleInput, *, config: Config, now: datetime, actor: str
) -> tuple[Sale, bool]:
    """The sale with this external id, created with its follow-ups if new; the flag says whether
    it was created. Re-sending the same external id changes nothing, even when two requests race.
    """
    existing = session.scalar(select(Sale).where(Sale.external_id == sale.external_id))
    if existing is not None:
        return existing, False
    try:
        with session.begin_nested():
            row = Sale(
                external_id=sale.external_id,
                customer=_find_or_add_customer(session, sale, now),
                product=_find_or_add_product(session, sale),
                sold_at=sale.sold_at,
                amount=sale.amount,
                currency=sale.currency,
                attributes=sale.attributes,
                created_at=now,
            )
            session.add(row)
            session.flush()
            follow_ups = schedule_sale(session, row, config, now)
    except IntegrityError:
        winner = session.scalar(select(Sale).where(Sale.external_id == sale.external_id))
        if winner is None:
            raise
        return winner, False
    audit.record(
        session,
        at=now,
        actor=actor,
        action="sale.record",
        entity_type="sale",
        entity_id=row.id,
        external_id=sale.external_id,
        follow_ups=len(follow_ups),
    )
    return row, True
