"""Owners' own words per reply label, read by the classifier with its lexicons.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lexicon_words",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("word", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lexicon_words")),
        sa.UniqueConstraint("label", "word", name=op.f("uq_lexicon_words_label_word")),
    )


def downgrade() -> None:
    op.drop_table("lexicon_words")
