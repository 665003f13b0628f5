"""Recording sales: the customer and product they belong to, once per external id."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.lifecycle import FollowUpStatus, SaleStatus
from scheduler.models import AuditEntry, Base, Customer, FollowUp, Product, Sale
from scheduler.scheduling import schedule_sales

T = TypeVar("T")
M = TypeVar("M", bound=Base)


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


IN_CHUNK = 500  # values per IN (...) list: well under every backend's parameter limit


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


def _customers_for(
    session: Session, sales: Sequence[SaleInput], now: datetime
) -> dict[str, Customer]:
    """Each sale's customer by external id: the one with this phone, else this email (the
    oldest), else a new one, shared by the sales of one batch."""
    known: dict[tuple[str, str], Customer | int] = {}
    for kind, column in (("phone", Customer.phone), ("email", Customer.email)):
        values = sorted({v for sale in sales if (v := getattr(sale, kind))})
        for chunk in _chunks(values):
            for row in session.scalars(
                select(Customer).where(column.in_(chunk)).order_by(Customer.id)
            ):
                known.setdefault((kind, getattr(row, kind)), row)
    fresh: list[dict[str, Any]] = []  # new customers, inserted at once below
    chosen: dict[str, Customer | int] = {}  # a customer, or its index in `fresh`
    for sale in sales:
        found = known.get(("phone", sale.phone or ""))
        if found is None:  # not `or`: index 0 of `fresh` is a customer too
            found = known.get(("email", sale.email or ""))
        if found is None:
            index = len(fresh)
            fresh.append(
                {
                    "name": sale.customer_name,
                    "phone": sale.phone,
                    "email": sale.email,
                    "locale": sale.locale,
                    "timezone": sale.timezone,
                    "created_at": now,
                }
            )
            for kind in ("phone", "email"):
                if value := getattr(sale, kind):
                    known.setdefault((kind, value), index)
            found = index
        chosen[sale.external_id] = found
    inserted = _insert_returning(session, Customer, fresh)
    return {key: inserted[c] if isinstance(c, int) else c for key, c in chosen.items()}


def _insert_returning(session: Session, model: type[M], rows: list[dict[str, Any]]) -> list[M]:
    """Bulk INSERT ... RETURNING the new objects in order: far cheaper than a unit-of-work
    flush of as many objects, which is what made recording sales slow."""
    if not rows:
        return []
    statement = insert(model).returning(model, sort_by_parameter_order=True)
    return list(session.scalars(statement, rows))


def _products_for(session: Session, sales: Sequence[SaleInput]) -> dict[str, Product]:
    skus = sorted({sale.product_sku for sale in sales if sale.product_sku})
    products = {
        product.sku: product
        for chunk in _chunks(skus)
        for product in session.scalars(select(Product).where(Product.sku.in_(chunk)))
    }
    for sale in sales:
        if sale.product_sku and sale.product_sku not in products:
            product = Product(sku=sale.product_sku, name=sale.product_name or sale.product_sku)
            session.add(product)
            products[sale.product_sku] = product
    session.flush()  # a few products: their ids are needed by the sales
    return products


def _existing(session: Session, external_ids: Sequence[str]) -> dict[str, Sale]:
    return {
        sale.external_id: sale
        for chunk in _chunks(external_ids)
        for sale in session.scalars(select(Sale).where(Sale.external_id.in_(chunk)))
    }


def record_sales(
    session: Session, sales: Sequence[SaleInput], *, config: Config, now: datetime, actor: str
) -> list[tuple[Sale, bool]]:
    """Each sale with its external id, created with its follow-ups if new, in input order; the
    flag says whether it was created. A handful of queries per batch, whatever its size: imports
    and the API share this path. Re-sending an external id changes nothing, even in a race."""
    existing = _existing(session, sorted({sale.external_id for sale in sales}))
    new: list[SaleInput] = []
    seen = set(existing)
    for sale in sales:  # the first of duplicate external ids in one batch wins
        if sale.external_id not in seen:
            seen.add(sale.external_id)
            new.append(sale)
    created: dict[str, Sale] = {}
    if new:
        try:
            with session.begin_nested():
                customers = _customers_for(session, new, now)
                products = _products_for(session, new)
                rows = _insert_returning(
                    session,
                    Sale,
                    [
                        {
                            "external_id": sale.external_id,
                            "customer_id": customers[sale.external_id].id,
                            "product_id": product.id
                            if (product := products.get(sale.product_sku or ""))
                            else None,
                            "sold_at": sale.sold_at,
                            "amount": sale.amount,
                            "currency": sale.currency,
                            "status": SaleStatus.ACTIVE,
                            "attributes": sale.attributes,
                            "created_at": now,
                        }
                        for sale in new
                    ],
                )
                planned = schedule_sales(session, rows, config, now)
        except IntegrityError:
            if len(sales) == 1:  # another request recorded it first: theirs is the sale
                winner = session.scalar(
                    select(Sale).where(Sale.external_id == sales[0].external_id)
                )
                if winner is None:
                    raise
                return [(winner, False)]
            return [pair for sale in sales for pair in record_sales(
                session, [sale], config=config, now=now, actor=actor
            )]  # fmt: skip
        created = {row.external_id: row for row in rows}
        session.execute(
            insert(AuditEntry),
            [
                {
                    "at": now,
                    "actor": actor,
                    "action": "sale.record",
                    "entity_type": "sale",
                    "entity_id": row.id,
                    "details": {"external_id": row.external_id, "follow_ups": planned[row.id]},
                }
                for row in rows
            ],
        )
    fresh = set(created)
    results = []
    for sale in sales:
        row = existing.get(sale.external_id) or created[sale.external_id]
        results.append((row, sale.external_id in fresh))
        fresh.discard(sale.external_id)  # a duplicate later in the batch was not created
    return results


def skipped_as_late(session: Session, sales: Sequence[Sale]) -> int:
    """How many follow-ups of these sales, just recorded, were skipped as they were planned: a
    sale recorded days after it happened misses the steps whose time passed beyond the grace,
    and whoever recorded it is told so rather than left to believe every step will go."""
    ids = [sale.id for sale in sales]
    return sum(
        session.scalar(
            select(func.count()).where(
                FollowUp.sale_id.in_(chunk),
                FollowUp.case_id.is_(None),
                FollowUp.status == FollowUpStatus.SKIPPED,
            )
        )
        or 0
        for chunk in _chunks(ids)
    )


def record_sale(
    session: Session, sale: SaleInput, *, config: Config, now: datetime, actor: str
) -> tuple[Sale, bool]:
    """`record_sales` for one sale."""
    return record_sales(session, [sale], config=config, now=now, actor=actor)[0]
