"""A batch of sales is planned as each sale alone would be, and written as Core writes rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.orm import Session

from scheduler.bulk_writes import insert_rows
from scheduler.config import Config
from scheduler.defaults import install_defaults
from scheduler.lifecycle import Anchor, Channel
from scheduler.models import Base, Cadence, CadenceStep, FollowUp, Product, Sale
from scheduler.sending.sales import record_sale, record_sales
from tests.factories import NOW
from tests.factories import sale_input as sale

AUDIT: Table = Base.metadata.tables["audit_log"]
AUDIT_COLUMNS = ("at", "actor", "action", "entity_type", "entity_id", "details")

# Sales that differ from the first in one of what their follow-ups are dated by: the moment
# of sale, the customer's zone, their reach, the product's cadence and its renewal period. The
# first is there twice: two sales alike share their dates.
VARIANTS: list[dict[str, Any]] = [
    {},
    {},
    {"sold_at": NOW - timedelta(hours=20, minutes=7)},
    {"sold_at": NOW - timedelta(days=30)},  # its early steps are past the grace: skipped
    {"timezone": "Europe/Madrid"},
    {"timezone": "America/New_York", "sold_at": NOW - timedelta(days=1)},
    {"phone": None, "email": "{n}@example.pe"},  # no phone: the SMS steps go by email
    {"product_sku": "SEG-1", "product_name": "Seguro", "category": "seguros"},
    {"product_sku": "FIL-1", "product_name": "Filtro", "renewal_days": 180},
]


def _sales(prefix: str) -> list[Any]:
    made = []
    for n, variant in enumerate(VARIANTS):
        fields = {"phone": f"+519876{len(prefix)}{n:04d}"} | variant
        if fields.get("email"):
            fields["email"] = fields["email"].format(n=f"{prefix}{n}")
        made.append(sale(f"{prefix}-{n}", **fields))
    return made


def _plan(session: Session, external_id: str) -> list[tuple[Any, ...]]:
    rows = session.execute(
        select(
            CadenceStep.key,
            FollowUp.channel,
            FollowUp.due_at,
            FollowUp.status,
            FollowUp.status_reason,
        )
        .join(FollowUp.step)
        .join(FollowUp.sale)
        .where(Sale.external_id == external_id)
        .order_by(CadenceStep.key)
    )
    return [tuple(row) for row in rows]


def test_a_batch_plans_each_sale_as_it_would_be_planned_alone(
    session: Session, config: Config
) -> None:
    install_defaults(session, NOW)
    insurance = Cadence(name="Seguros", product_category="seguros", created_at=NOW, updated_at=NOW)
    session.add(insurance)
    session.flush()
    session.add_all(
        [
            CadenceStep(
                cadence_id=insurance.id,
                key="seg-2h",
                offset_minutes=120,
                channel=Channel.EMAIL,
                template_name="thanks",
            ),
            CadenceStep(
                cadence_id=insurance.id,
                key="seg-renewal",
                anchor=Anchor.RENEWAL,
                offset_minutes=-7 * 1440,
                channel=Channel.SMS,
                template_name="renewal_reminder",
            ),
        ]
    )
    session.flush()
    record_sales(session, _sales("A"), config=config, now=NOW, actor="t")
    for one in _sales("BB"):
        record_sale(session, one, config=config, now=NOW, actor="t")
    for n, variant in enumerate(VARIANTS):
        together, alone = _plan(session, f"A-{n}"), _plan(session, f"BB-{n}")
        assert together == alone, variant
        assert together
    # What tells the variants apart did tell their plans apart.
    plans = [_plan(session, f"A-{n}") for n in range(len(VARIANTS))]
    assert plans[0] == plans[1]
    assert all(plans[0] != plan for plan in plans[2:])
    assert {key for key, *_ in plans[7]} == {"seg-2h"}  # the category's cadence
    assert "renewal-reminder" in {key for key, *_ in plans[8]}


def test_rows_are_written_as_core_writes_them(session: Session) -> None:
    """Shared objects (one time, one dict), equal values of other types (1 and True), and
    values that cannot be hashed are each written as SQLAlchemy writes them."""
    now, shared = NOW, {"follow_ups": 4}
    values = [
        (now, "t", "x", "sale", 1, shared),
        (now, "t", "x", "sale", 2, shared),
        (now + timedelta(microseconds=1), "t", "x", "sale", 3, {"follow_ups": 4}),
        (now, "t", "x", "sale", 4, 1),
        (now, "t", "x", "sale", 5, True),
        (now, "t", "x", "sale", None, {"nested": [1, {"a": None}], "text": "ñandú\n"}),
    ]
    insert_rows(session, AUDIT, AUDIT_COLUMNS, values)
    session.execute(insert(AUDIT), [dict(zip(AUDIT_COLUMNS, row, strict=True)) for row in values])
    stored = session.execute(
        text("SELECT at, actor, action, entity_type, entity_id, details FROM audit_log ORDER BY id")
    ).all()
    assert stored[: len(values)] == stored[len(values) :]
    read = session.execute(select(AUDIT.c.entity_id, AUDIT.c.details).order_by(AUDIT.c.id)).all()
    assert [tuple(row) for row in read[: len(values)]] == [(row[4], row[5]) for row in values]
    assert [type(row[1]) for row in read[3:5]] == [int, bool]


def test_many_rows_are_written_in_order_over_several_statements(session: Session) -> None:
    rows: list[tuple[Any, ...]] = [(NOW, "t", "x", "sale", n, {}) for n in range(2_500)]
    insert_rows(session, AUDIT, AUDIT_COLUMNS, rows)
    ids = session.scalars(select(AUDIT.c.entity_id).order_by(AUDIT.c.id)).all()
    assert ids == list(range(2_500))


def test_conflicting_rows_can_be_left_as_they_are(session: Session) -> None:
    session.add(Product(sku="A", name="First"))
    session.flush()
    rows = [("A", "Second", None, None), ("B", "Other", None, None)]
    products = Base.metadata.tables["products"]
    columns = ("sku", "name", "category", "renewal_days")
    insert_rows(session, products, columns, rows, ignoring_conflicts=True)
    names = session.execute(select(Product.sku, Product.name).order_by(Product.sku)).all()
    assert [tuple(row) for row in names] == [("A", "First"), ("B", "Other")]


def test_a_column_with_a_default_must_be_given(session: Session) -> None:
    with pytest.raises(ValueError, match="details"):
        insert_rows(session, AUDIT, AUDIT_COLUMNS[:-1], [(NOW, "t", "x", "sale", 1)])
    with pytest.raises(ValueError):  # a row short of a value
        insert_rows(session, AUDIT, AUDIT_COLUMNS, [(NOW, "t", "x", "sale", 1)])
    assert session.scalar(select(func.count()).select_from(AUDIT)) == 0
