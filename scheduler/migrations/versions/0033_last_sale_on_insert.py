"""A sale inserted moves its customer's latest sale only forward, on SQLite: the trigger of
0025 read the maximum of all the customer's sales again, twice, for each sale written (about
5 µs a sale, over half of the sale's insert). The maximum with one more sale is the
later of the one kept and the new one's, so the insert trigger compares those two; re-dating,
moving and removing a sale still read the maximum again, as 0025's triggers do. PostgreSQL's
trigger, which also locks the customer, stays as it is.

Revision ID: 0033
Revises: 0032
Create Date: 2026-11-30 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LATEST = "(SELECT max(sold_at) FROM sales WHERE sales.customer_id = customers.id)"
BEFORE = (  # migration 0025's
    "AFTER INSERT ON sales BEGIN UPDATE customers SET last_sold_at = "
    f"{LATEST} WHERE id IN (NEW.customer_id) AND last_sold_at IS NOT {LATEST}; END"
)
AFTER = (
    "AFTER INSERT ON sales BEGIN UPDATE customers SET last_sold_at = NEW.sold_at "
    "WHERE id = NEW.customer_id AND (last_sold_at IS NULL OR last_sold_at < NEW.sold_at); END"
)


def upgrade() -> None:
    _replace(AFTER)


def downgrade() -> None:
    _replace(BEFORE)


def _replace(body: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    op.execute("DROP TRIGGER sales_last_sale_insert")
    op.execute(f"CREATE TRIGGER sales_last_sale_insert {body}")
