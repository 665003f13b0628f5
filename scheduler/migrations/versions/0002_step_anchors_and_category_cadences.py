"""Cadence steps count from an anchor (sale, renewal, score); cadences per product category.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 12:03:53.701005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cadence_steps", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "anchor",
                sa.Enum(
                    "sale",
                    "renewal",
                    "score",
                    name="anchor",
                    native_enum=False,
                    create_constraint=True,
                    length=16,
                ),
                nullable=False,
                server_default="sale",
            )
        )

    with op.batch_alter_table("cadences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("product_category", sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_cadences_product_category"), ["product_category"]
        )


def downgrade() -> None:
    with op.batch_alter_table("cadences", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_cadences_product_category"), type_="unique")
        batch_op.drop_column("product_category")

    with op.batch_alter_table("cadence_steps", schema=None) as batch_op:
        batch_op.drop_column("anchor")
