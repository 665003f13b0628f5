"""Each reply keeps the themes of its words, and the fingerprint of the words they were read
with: the dashboard counted a quarter's complaints by reading every one of them again. Replies
already stored have none yet: the worker's `themes` job reads them.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-29 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


READ = "direction = 'inbound' AND label IS NOT NULL"  # replies the worker has classified


def upgrade() -> None:
    with op.batch_alter_table("messages") as table:
        table.add_column(sa.Column("themes", sa.String(length=64), nullable=True))
        table.add_column(sa.Column("themes_read_with", sa.String(length=16), nullable=True))
    # The worker finds the replies never read for themes, and those read with other words,
    # without a pass over every message: two small indexes.
    unread = f"{READ} AND themes_read_with IS NULL"
    op.create_index(
        "ix_messages_themes_unread",
        "messages",
        ["id"],
        unique=False,
        sqlite_where=sa.text(unread),
        postgresql_where=sa.text(unread),
    )
    op.create_index(
        "ix_messages_themes_read_with",
        "messages",
        ["themes_read_with", "id"],
        unique=False,
        sqlite_where=sa.text(READ),
        postgresql_where=sa.text(READ),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_themes_read_with", table_name="messages")
    op.drop_index("ix_messages_themes_unread", table_name="messages")
    for column in ("themes_read_with", "themes"):  # in place: SQLite 3.35 drops columns
        op.execute(f"ALTER TABLE messages DROP COLUMN {column}")
