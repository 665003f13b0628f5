"""Follow-ups found by their sale: a plain index on follow_ups.sale_id.

The unique (sale, step) index holds only a sale's own follow-ups (case_id IS NULL), so a query
by sale alone (a sale's page, a replan, the planning of a batch) read the whole table.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_follow_ups_sale_id"), "follow_ups", ["sale_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_follow_ups_sale_id"), table_name="follow_ups")
