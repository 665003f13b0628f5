"""The dashboard's periods found by index: follow-ups by due and sent time and replies by time,
each with the columns the figures count (so that the index alone answers); cases by opening
and resolution, remedies by time, and sales by product (one product's figures); a customer's
follow-ups by sending time, in place of the index on the customer alone, and their replies by
time (whether they answered their last follow-ups); sales by date (the latest, on the front
page). Without them, every figure of a period read its whole table.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COVERING = (
    ("ix_follow_ups_due_figures", ["due_at", "status", "channel", "step_id", "sale_id"]),
    (
        "ix_follow_ups_sent_figures",
        ["sent_at", "status", "step_id", "customer_id", "id", "sale_id"],
    ),
    ("ix_follow_ups_customer_sent", ["customer_id", "sent_at", "status"]),  # replaces the next
)
REPLACED = ("ix_follow_ups_customer_id", ["customer_id"])
INDEXES = (
    ("cases", "opened_at"),
    ("cases", "resolved_at"),
    ("remedies", "created_at"),
    ("sales", "product_id"),
    ("sales", "sold_at"),
)


INBOUND = "direction = 'inbound'"


def upgrade() -> None:
    for name, columns in COVERING:
        op.create_index(name, "follow_ups", columns, unique=False)
    op.drop_index(REPLACED[0], table_name="follow_ups")
    op.create_index(
        "ix_messages_inbound_time",
        "messages",
        ["created_at", "follow_up_id", "label", "score", "case_id"],
        unique=False,
        sqlite_where=sa.text(INBOUND),
        postgresql_where=sa.text(INBOUND),
    )
    op.create_index(
        "ix_messages_inbound_customer",
        "messages",
        ["customer_id", "created_at"],
        unique=False,
        sqlite_where=sa.text(INBOUND),
        postgresql_where=sa.text(INBOUND),
    )
    for table, column in INDEXES:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def downgrade() -> None:
    op.drop_index("ix_messages_inbound_customer", table_name="messages")
    op.drop_index("ix_messages_inbound_time", table_name="messages")
    for table, column in reversed(INDEXES):
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
    op.create_index(REPLACED[0], "follow_ups", REPLACED[1], unique=False)
    for name, _columns in reversed(COVERING):
        op.drop_index(name, table_name="follow_ups")
