"""Each answered case's opening-hours minutes to its first answer, kept on the case by the
worker (`figures.first_answers.measure`) with the fingerprint of the opening hours and time
zone it counted them in: the dashboard's median and 90th percentile are then a count of the
period's cases by their minutes, where it counted the opening hours of 23 000 cases of a busy
quarter in Python on every page. A case answered since the worker's last look, or counted in
hours the owner has since changed, is counted as before. Empty here: the worker fills them.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-01 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ANSWERED = "first_responded_at IS NOT NULL"


def upgrade() -> None:
    op.add_column("cases", sa.Column("first_answer_minutes", sa.Integer(), nullable=True))
    op.add_column("cases", sa.Column("minutes_counted_with", sa.String(length=16), nullable=True))
    # The answered cases by the hours they were counted in: those to count (again) are found
    # without a pass over every case.
    op.create_index(
        "ix_cases_minutes_counted_with",
        "cases",
        ["minutes_counted_with", "id"],
        unique=False,
        sqlite_where=sa.text(ANSWERED),
        postgresql_where=sa.text(ANSWERED),
    )


def downgrade() -> None:
    op.drop_index("ix_cases_minutes_counted_with", table_name="cases")
    for column in ("minutes_counted_with", "first_answer_minutes"):
        op.execute(f"ALTER TABLE cases DROP COLUMN {column}")
