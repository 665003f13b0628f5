"""Customers erased on request: `customers.erased_at`, `erasures` (their addresses as keyed
hashes, with the no's they had said), and `installation_secrets` (the key of those hashes).

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-29 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "erasures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_by", sa.String(length=100), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=True),
        sa.Column("email_hash", sa.String(length=64), nullable=True),
        sa.Column("sms_opt_out", sa.Boolean(), nullable=False),
        sa.Column("whatsapp_opt_out", sa.Boolean(), nullable=False),
        sa.Column("email_opt_out", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_id"),
    )
    op.create_index("ix_erasures_phone_hash", "erasures", ["phone_hash"])
    op.create_index("ix_erasures_email_hash", "erasures", ["email_hash"])
    op.create_table(
        "installation_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("installation_secrets")
    op.drop_index("ix_erasures_email_hash", table_name="erasures")
    op.drop_index("ix_erasures_phone_hash", table_name="erasures")
    op.drop_table("erasures")
    op.execute("ALTER TABLE customers DROP COLUMN erased_at")  # in place: SQLite 3.35
