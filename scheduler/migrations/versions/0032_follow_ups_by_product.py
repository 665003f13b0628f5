"""Each follow-up's product, kept by the database: `follow_ups.product_id` is its sale's
product (null without one), so that one product's follow-ups are read along their own
indexes instead of joining every sale. The app writes it with the follow-up; a writer that
leaves it null has it filled from the sale, and a sale that changes product moves its
follow-ups along (triggers on both databases). `follow_up_tallies` counts by product too (0
for none), so one product's figures over a quarter are summed by day like everyone's; the
tallies are counted again. The figures' indexes on `follow_ups` hold the product where they
held the sale, and the one by status and due time holds it too (what goes out next for one
product: read from the index, not from each follow-up's row); the paused ones have an index
of their own (few, and the list of them read every waiting follow-up of the coming week).

Revision ID: 0032
Revises: 0031
Create Date: 2026-11-30 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from scheduler.migrations.tallying import WITH_PRODUCT, WITH_REPLIED, fill, keep, stop_keeping

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOLLOW_UPS_INDEXES = {  # name: (columns before, columns after)
    # In the order the claim reads them (a sort of a moment's follow-ups at each claim, else).
    "ix_follow_ups_status_due_at": (["status", "due_at"], ["status", "due_at", "id", "product_id"]),
    "ix_follow_ups_due_figures": (
        ["due_at", "status", "channel", "step_id", "sale_id"],
        ["due_at", "status", "channel", "step_id", "product_id"],
    ),
    "ix_follow_ups_sent_figures": (
        ["sent_at", "status", "step_id", "customer_id", "id", "sale_id"],
        ["sent_at", "status", "step_id", "customer_id", "id", "product_id"],
    ),
}
PAUSED = "ix_follow_ups_paused"

POSTGRESQL_FUNCTIONS = {
    "follow_up_product_kept": """
CREATE FUNCTION follow_up_product_kept() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    NEW.product_id := (SELECT product_id FROM sales WHERE id = NEW.sale_id);
    RETURN NEW;
END
$$
""",
    "sale_product_moved": """
CREATE FUNCTION sale_product_moved() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE follow_ups SET product_id = NEW.product_id WHERE sale_id = NEW.id;
    RETURN NULL;
END
$$
""",
}
POSTGRESQL_TRIGGERS = {  # name: (table, when and how, function)
    "follow_up_product_insert": (
        "follow_ups",
        "BEFORE INSERT ON follow_ups FOR EACH ROW WHEN (NEW.product_id IS NULL)",
        "follow_up_product_kept",
    ),
    "sale_product_update": (
        "sales",
        "AFTER UPDATE OF product_id ON sales FOR EACH ROW "
        "WHEN (OLD.product_id IS DISTINCT FROM NEW.product_id)",
        "sale_product_moved",
    ),
}
SQLITE_TRIGGERS = {
    "follow_up_product_insert": "AFTER INSERT ON follow_ups WHEN NEW.product_id IS NULL "
    "BEGIN UPDATE follow_ups SET product_id = "
    "(SELECT product_id FROM sales WHERE id = NEW.sale_id) WHERE id = NEW.id; END",
    "sale_product_update": "AFTER UPDATE OF product_id ON sales "
    "WHEN OLD.product_id IS NOT NEW.product_id "
    "BEGIN UPDATE follow_ups SET product_id = NEW.product_id WHERE sale_id = NEW.id; END",
}


def _indexes(table: str, indexes: dict[str, tuple[list[str], list[str]]], *, after: bool) -> None:
    """Create the indexes as they are after this migration, or as they were before it."""
    for name, (before, now) in indexes.items():
        op.create_index(name, table, now if after else before, unique=False)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:  # no follow-up or sale written between the filling and the triggers
        op.execute("LOCK TABLE follow_ups, sales IN SHARE ROW EXCLUSIVE MODE")
    stop_keeping()
    for name in FOLLOW_UPS_INDEXES:  # not kept up to date while every row is written
        op.drop_index(name, table_name="follow_ups")
    op.add_column("follow_ups", sa.Column("product_id", sa.Integer(), nullable=True))
    if postgresql:
        op.execute(
            "UPDATE follow_ups SET product_id = sales.product_id FROM sales "
            "WHERE sales.id = follow_ups.sale_id AND sales.product_id IS NOT NULL"
        )
    else:
        op.execute(
            "UPDATE follow_ups SET product_id = "
            "(SELECT product_id FROM sales WHERE sales.id = follow_ups.sale_id)"
        )
    op.execute("DELETE FROM follow_up_tallies")  # counted again below, by product
    product = sa.Column("product_id", sa.Integer(), nullable=False)
    if postgresql:
        op.add_column("follow_up_tallies", product)  # the table is empty: no default needed
    else:  # SQLite adds a column that may not be null only by building the table anew
        with op.batch_alter_table("follow_up_tallies", recreate="always") as table:
            table.add_column(product)
    _indexes("follow_ups", FOLLOW_UPS_INDEXES, after=True)
    op.create_index(
        PAUSED,
        "follow_ups",
        ["due_at", "id"],
        unique=False,
        sqlite_where=sa.text("paused_at IS NOT NULL"),
        postgresql_where=sa.text("paused_at IS NOT NULL"),
    )
    fill(WITH_PRODUCT)
    keep(WITH_PRODUCT)
    if postgresql:
        for function in POSTGRESQL_FUNCTIONS.values():
            op.execute(function)
        for name, (_table, when, function) in POSTGRESQL_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {function}()")
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("LOCK TABLE follow_ups, sales IN SHARE ROW EXCLUSIVE MODE")
        for name, (table, _when, _function) in POSTGRESQL_TRIGGERS.items():
            op.execute(f"DROP TRIGGER {name} ON {table}")
        for function in POSTGRESQL_FUNCTIONS:
            op.execute(f"DROP FUNCTION {function}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    stop_keeping()
    for name in [*FOLLOW_UPS_INDEXES, PAUSED]:
        op.drop_index(name, table_name="follow_ups")
    for table in ("follow_up_tallies", "follow_ups"):  # in place: SQLite 3.35 drops columns
        op.execute(f"ALTER TABLE {table} DROP COLUMN product_id")
    _indexes("follow_ups", FOLLOW_UPS_INDEXES, after=False)
    op.execute("DELETE FROM follow_up_tallies")
    fill(WITH_REPLIED)
    keep(WITH_REPLIED)
