"""Orders from the shops' webhooks: every signed delivery, what came of it, and the body of
those refused, for a person to read.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shop_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop", sa.String(length=16), nullable=False),
        sa.Column("delivery_id", sa.String(length=100), nullable=True),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "recorded",
                "cancelled",
                "ignored",
                "refused",
                name="delivery_outcome",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("sale_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["sale_id"],
            ["sales.id"],
            name=op.f("fk_shop_deliveries_sale_id_sales"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_deliveries")),
        sa.UniqueConstraint(
            "shop", "delivery_id", name=op.f("uq_shop_deliveries_shop_delivery_id")
        ),
    )
    op.create_index("ix_shop_deliveries_order", "shop_deliveries", ["shop", "order_id"])
    op.create_index(
        op.f("ix_shop_deliveries_received_at"), "shop_deliveries", ["received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_shop_deliveries_received_at"), table_name="shop_deliveries")
    op.drop_index("ix_shop_deliveries_order", table_name="shop_deliveries")
    op.drop_table("shop_deliveries")
