"""Why a period's follow-ups were skipped, read from an index of the skipped ones alone (by due
time, with the reason): the dashboard read each skipped follow-up's row for its reason.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SKIPPED = "status = 'skipped'"


def upgrade() -> None:
    op.create_index(
        "ix_follow_ups_skipped_because",
        "follow_ups",
        ["due_at", "status_reason"],
        unique=False,
        sqlite_where=sa.text(SKIPPED),
        postgresql_where=sa.text(SKIPPED),
    )


def downgrade() -> None:
    op.drop_index("ix_follow_ups_skipped_because", table_name="follow_ups")
