"""Pauses: a follow-up held back by a person (`follow_ups.paused_at`), and the whole business's
or one cadence's follow-ups held back for a while (`sending_pauses`, with why and by whom).

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-29 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("resumed_at IS NULL")


def upgrade() -> None:
    op.add_column("follow_ups", sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "sending_pauses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("cadence_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused_by", sa.String(length=100), nullable=False),
        sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resumed_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["cadence_id"], ["cadences.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_sending_pauses_open",
        "sending_pauses",
        ["scope"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("uq_sending_pauses_open", table_name="sending_pauses")
    op.drop_table("sending_pauses")
    op.execute("ALTER TABLE follow_ups DROP COLUMN paused_at")  # in place: SQLite 3.35
