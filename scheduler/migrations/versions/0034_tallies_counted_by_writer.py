"""Planning's follow-ups tallied a row per kind, on SQLite, whose triggers fire row by row:
the tallies' insert trigger wrote a row (and two index entries) for each follow-up planned, a
fifth of the follow-ups' insert. `follow_up_tallies_writer` holds a row only while a writer
inserts follow-ups whose tallies it writes itself, counted (in its own transaction: SQLite
has one writer at a time, and nobody else sees the row); the insert trigger then leaves them.
Every other writer, and every update and delete, is tallied by the triggers as before.
PostgreSQL's triggers stay as they are: the table stays empty there.

Revision ID: 0034
Revises: 0033
Create Date: 2026-11-30 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from scheduler.migrations.tallying import WITH_PRODUCT, WRITER, keep_inserts

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        WRITER,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{WRITER}")),
    )
    keep_inserts(WITH_PRODUCT, writer=True)


def downgrade() -> None:
    keep_inserts(WITH_PRODUCT, writer=False)
    op.drop_table(WRITER)
