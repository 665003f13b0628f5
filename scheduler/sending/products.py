"""The product catalogue: products are made by sales (SKU and name); owners give them a category,
a renewal period and a cadence, and the sales already recorded follow the change.

Which cadence a product's sales follow: the one chosen for the product, else the cadence that
serves its category, else the default (`planning.choose_cadence`). A renewal period plans the
cadence's renewal steps (the default's: a reminder 14 days before). How a change reaches the
follow-ups already planned is `replanning.replan_product`'s to say.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.config import Config
from scheduler.db import begin_writing
from scheduler.models import Cadence, Product, Sale
from scheduler.sending.planning import Because, cadence_of, choose_cadence
from scheduler.sending.replanning import replan_product
from scheduler.typed_text import text_cell

Problem = tuple[str, str]  # (field, message)

FIELDS = ("name", "category", "renewal_days", "cadence")
MAX_NAME = 200  # Product.name
MAX_CATEGORY = 100  # Product.category, Cadence.product_category
MAX_RENEWAL_DAYS = 3650  # ten years: as far back as a sale may be recorded
_WHOLE = re.compile(r"-?[0-9]+")  # ASCII digits: int() would read "٣٦٥" too


@dataclass(frozen=True)
class ProductChange:
    """A product as its owner wants it: every field, None where there is none."""

    name: str
    category: str | None
    renewal_days: int | None
    cadence: str | None  # a cadence's name; None: by category, else the default


@dataclass(frozen=True)
class ProductView:
    """A product with the cadence its sales follow and why, for the admin and the API."""

    sku: str
    name: str
    category: str | None
    renewal_days: int | None
    cadence: str | None  # chosen for the product
    follows: str | None  # the cadence followed (None: no active cadence at all)
    because: Because | None
    sales: int


def parse_renewal_days(value: Any) -> int | None:
    """A renewal period in whole days, 1 to 3650: a JSON number or a cell's digits; None when
    not given. "365 días", 365.5, -30 or true are refused, saying how to write it."""
    if value is None or isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be a whole number of days, such as 365")
    text = value.strip() if isinstance(value, str) else str(value)
    if not _WHOLE.fullmatch(text):
        raise ValueError("must be a whole number of days, such as 365")
    if len(text) > 6 or not 1 <= int(text) <= MAX_RENEWAL_DAYS:
        raise ValueError(f"must be between 1 and {MAX_RENEWAL_DAYS} days")
    return int(text)


def check_product(
    raw: Mapping[str, Any], cadences: Collection[str]
) -> ProductChange | list[Problem]:
    """The change, or every problem with it by field. `raw` holds FIELDS (from a form: text;
    from the API: JSON values); `cadences` are the names that exist."""
    problems: list[Problem] = []
    name = category = cadence = None
    try:
        name = text_cell(raw.get("name"), MAX_NAME)
        if name is None:
            problems.append(("name", "a product needs a name"))
    except ValueError as error:
        problems.append(("name", str(error)))
    try:
        category = text_cell(raw.get("category"), MAX_CATEGORY)
    except ValueError as error:
        problems.append(("category", str(error)))
    renewal_days = None
    try:
        renewal_days = parse_renewal_days(raw.get("renewal_days"))
    except ValueError as error:
        problems.append(("renewal_days", str(error)))
    try:
        cadence = text_cell(raw.get("cadence"))
        if cadence is not None and cadence not in cadences:
            problems.append(("cadence", f"no cadence is called {cadence[:100]!r}"))
    except ValueError as error:
        problems.append(("cadence", str(error)))
    if problems:
        return problems
    assert name is not None
    return ProductChange(name, category, renewal_days, cadence)


class ProductError(ValueError):
    """A product change that cannot be made; `problems` lists (field, message)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in problems))
        self.problems = problems


def change_product(
    session: Session,
    product: Product,
    values: Mapping[str, Any],
    *,
    config: Config,
    now: datetime,
    actor: str,
) -> dict[str, int]:
    """Set `values` (Product attributes: name, category, renewal_days, cadence_id) that differ,
    write the audit (each field from what to what) and keep the promise to the product's
    sales already recorded (`replan_product`). Returns the follow-ups' counts; nothing when
    nothing changed. Sales recorded with new values for their product change it this way too."""
    changes = {
        key: [getattr(product, key), value]
        for key, value in values.items()
        if getattr(product, key) != value
    }
    if not changes:
        return {}
    chosen = cadence_of(session, product)
    renewal_before = product.renewal_days
    for key, (_before, after) in changes.items():
        setattr(product, key, after)
    session.flush()
    counts = replan_product(
        session,
        product,
        followed_before=chosen[0] if chosen else None,
        renewal_before=renewal_before,
        config=config,
        now=now,
    )
    audit.record(
        session,
        at=now,
        actor=actor,
        action="product.update",
        entity_type="product",
        entity_id=product.id,
        sku=product.sku,
        changes=changes,
        follow_ups=counts,
    )
    return counts


def update_product(
    session: Session,
    sku: str,
    change: Mapping[str, Any],
    *,
    config: Config,
    now: datetime,
    actor: str,
) -> tuple[Product, dict[str, int]] | None:
    """Check `change` (raw FIELDS, as `check_product` takes them) and apply it to the product
    with this SKU; None when there is none (products are made by sales). Raises ProductError
    with every problem. The product is locked first, so two owners saving at once take turns
    and each one's change is audited from what the other left. The caller commits."""
    begin_writing(session)
    product = session.scalar(select(Product).where(Product.sku == sku).with_for_update())
    if product is None:
        return None
    names = set(session.scalars(select(Cadence.name)))
    checked = check_product(change, names)
    if isinstance(checked, list):
        raise ProductError(checked)
    cadence_id = (
        session.scalar(select(Cadence.id).where(Cadence.name == checked.cadence))
        if checked.cadence
        else None
    )
    values = {
        "name": checked.name,
        "category": checked.category,
        "renewal_days": checked.renewal_days,
        "cadence_id": cadence_id,
    }
    counts = change_product(session, product, values, config=config, now=now, actor=actor)
    return product, counts


def list_products(
    session: Session, *, search: str = "", after: str | None = None, limit: int = 100
) -> list[ProductView]:
    """Products by SKU, those after `after` (the last SKU of the page before), whose SKU or
    name holds `search`, with the cadence each follows and how many sales it has."""
    query = select(Product).order_by(Product.sku).limit(limit)
    if after is not None:
        query = query.where(Product.sku > after)
    if search.strip():
        wanted = search.strip().lower()
        query = query.where(
            or_(
                func.lower(Product.sku).contains(wanted, autoescape=True),
                func.lower(Product.name).contains(wanted, autoescape=True),
            )
        )
    return product_views(session, session.scalars(query).all())


def product_view(session: Session, sku: str) -> ProductView | None:
    """The product with this SKU as `list_products` shows it, or None."""
    product = session.scalar(select(Product).where(Product.sku == sku))
    return product_views(session, [product])[0] if product else None


def product_views(session: Session, products: Sequence[Product]) -> list[ProductView]:
    """Each product with the cadence it follows, why, and its number of sales."""
    cadences = session.scalars(select(Cadence)).all()
    names = {cadence.id: cadence.name for cadence in cadences}
    counts = dict(
        session.execute(
            select(Sale.product_id, func.count())
            .where(Sale.product_id.in_([product.id for product in products]))
            .group_by(Sale.product_id)
        ).all()
    )
    views = []
    for product in products:
        chosen = choose_cadence(product.cadence_id, product.category, cadences)
        views.append(
            ProductView(
                sku=product.sku,
                name=product.name,
                category=product.category,
                renewal_days=product.renewal_days,
                cadence=names.get(product.cadence_id) if product.cadence_id else None,
                follows=chosen[0].name if chosen else None,
                because=chosen[1] if chosen else None,
                sales=counts.get(product.id, 0),
            )
        )
    return views
