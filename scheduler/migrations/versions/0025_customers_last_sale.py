"""Each customer's latest sale, kept by the database: `customers.last_sold_at` is the latest
`sold_at` of their sales (NULL for a customer who only wrote in), so that the customer list
sorts 100 000 people by their latest purchase from an index instead of reading every sale.
A trigger on `sales` keeps it whenever a sale is written, re-dated, moved or removed; the
customers listed by name page through (name, id).

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-29 08:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LATEST = "(SELECT max(sold_at) FROM sales WHERE sales.customer_id = customers.id)"
# (the event, the customers it touches): a sale's date and customer never change in the app,
# but a hand-made UPDATE must not leave the list wrong either.
EVENTS = {
    "insert": ("INSERT", "NEW.customer_id"),
    "update": ("UPDATE OF sold_at, customer_id", "OLD.customer_id, NEW.customer_id"),
    "delete": ("DELETE", "OLD.customer_id"),
}


def _touch(ids: str) -> str:
    return (
        f"UPDATE customers SET last_sold_at = {LATEST} "
        f"WHERE id IN ({ids}) AND last_sold_at IS DISTINCT FROM {LATEST};"
    )


# PostgreSQL: the customers locked first, in order, as the follow-ups' replies are (0024): two
# imports of one customer's sales at once wait for each other, then each reads both sales.
POSTGRESQL_FUNCTION = f"""
CREATE FUNCTION customers_last_sale_kept() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM 1 FROM customers WHERE id = NEW.customer_id FOR NO KEY UPDATE;
        {_touch("NEW.customer_id")}
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM 1 FROM customers WHERE id = OLD.customer_id FOR NO KEY UPDATE;
        {_touch("OLD.customer_id")}
    ELSE
        PERFORM 1 FROM customers WHERE id IN (OLD.customer_id, NEW.customer_id)
            ORDER BY id FOR NO KEY UPDATE;
        {_touch("OLD.customer_id, NEW.customer_id")}
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    postgresql = _postgresql()
    if postgresql:  # no sale written between the filling and the trigger
        op.execute("LOCK TABLE sales IN SHARE ROW EXCLUSIVE MODE")
    op.add_column("customers", sa.Column("last_sold_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(f"UPDATE customers SET last_sold_at = {LATEST}")
    # Customers who bought, latest first (the partial index scanned backwards); those who
    # never did follow by id. And by name, for the list's other order.
    op.create_index(
        "ix_customers_last_sold",
        "customers",
        ["last_sold_at", "id"],
        unique=False,
        sqlite_where=sa.text("last_sold_at IS NOT NULL"),
        postgresql_where=sa.text("last_sold_at IS NOT NULL"),
    )
    op.create_index("ix_customers_name", "customers", ["name", "id"], unique=False)
    if postgresql:
        op.execute(POSTGRESQL_FUNCTION)
        for event, (on, _ids) in EVENTS.items():
            op.execute(
                f"CREATE TRIGGER sales_last_sale_{event} AFTER {on} ON sales FOR EACH ROW "
                "EXECUTE FUNCTION customers_last_sale_kept()"
            )
    else:
        for event, (on, ids) in EVENTS.items():
            op.execute(
                f"CREATE TRIGGER sales_last_sale_{event} AFTER {on} ON sales "
                f"BEGIN {_touch(ids).replace('IS DISTINCT FROM', 'IS NOT')} END"
            )


def downgrade() -> None:
    for event in EVENTS:
        op.execute(f"DROP TRIGGER sales_last_sale_{event}" + " ON sales" * _postgresql())
    if _postgresql():
        op.execute("DROP FUNCTION customers_last_sale_kept()")
    op.drop_index("ix_customers_name", table_name="customers")
    op.drop_index("ix_customers_last_sold", table_name="customers")
    op.execute("ALTER TABLE customers DROP COLUMN last_sold_at")  # in place: SQLite 3.35


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"
