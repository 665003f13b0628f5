"""Follow-ups tallied by UTC day, kept by the database: `follow_up_tallies` holds, for each day
a follow-up was due (and the day it was sent), its step, channel and status, how many there
are. Triggers on `follow_ups` add a row of +n for what a statement wrote and -n for what it
replaced or removed, whatever wrote it (the app, a cascade, a hand-typed UPDATE), so the sums
are always those of the follow-ups themselves; the worker folds the rows together now and
then. Filled from the follow-ups already there.

The triggers are those of `scheduler.migrations.tallying` (PostgreSQL: statement triggers over
transition tables; SQLite: row triggers).

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-29 03:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from scheduler.migrations.tallying import FIRST, fill, keep, stop_keeping

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "follow_up_tallies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("due_day", sa.Date(), nullable=False),
        sa.Column("sent_day", sa.Date(), nullable=True),
        sa.Column("step_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up_tallies")),
    )
    op.create_index(
        "ix_follow_up_tallies_due",
        "follow_up_tallies",
        ["due_day", "status", "channel", "step_id", "n"],
        unique=False,
    )
    op.create_index(
        "ix_follow_up_tallies_sent",
        "follow_up_tallies",
        ["sent_day", "status", "step_id", "n"],
        unique=False,
    )
    if op.get_bind().dialect.name == "postgresql":  # no follow-up written meanwhile
        op.execute("LOCK TABLE follow_ups IN SHARE ROW EXCLUSIVE MODE")
    fill(FIRST)
    keep(FIRST)


def downgrade() -> None:
    stop_keeping()
    op.drop_index("ix_follow_up_tallies_sent", table_name="follow_up_tallies")
    op.drop_index("ix_follow_up_tallies_due", table_name="follow_up_tallies")
    op.drop_table("follow_up_tallies")
