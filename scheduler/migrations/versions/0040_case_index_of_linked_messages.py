"""The index of messages by case holds the messages linked to a case, not every message: a
follow-up sent, a reply that opened no case, a notice to staff are in no case, and each one's
entry (a null) was written at every send and never read: whatever looks up a case's messages
names the case. At five million messages of which a few hundred thousand are a case's, the
index held the others for nothing (and each send paid for its entry: one index insertion of
the seven a message took).

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-01 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0040"
down_revision: str | None = "0039"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_messages_case_id"
LINKED = sa.text("case_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index(NAME, table_name="messages")
    op.create_index(NAME, "messages", ["case_id"], sqlite_where=LINKED, postgresql_where=LINKED)


def downgrade() -> None:
    op.drop_index(NAME, table_name="messages")
    op.create_index(NAME, "messages", ["case_id"])
