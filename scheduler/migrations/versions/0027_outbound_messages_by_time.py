"""Outbound messages by time, and by status and time: the outbox page lists what went out, the
newest first, a page at a time, without sorting a year of messages for each page.

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-29 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTBOUND = sa.text("direction = 'outbound'")
INDEXES = {
    "ix_messages_outbound_time": ["created_at", "id"],
    "ix_messages_outbound_status": ["status", "created_at", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(
            name,
            "messages",
            columns,
            unique=False,
            sqlite_where=OUTBOUND,
            postgresql_where=OUTBOUND,
        )


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="messages")
