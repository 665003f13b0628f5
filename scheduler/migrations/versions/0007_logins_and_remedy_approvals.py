"""Failed log-ins (to slow down guessing), remedies that wait for the owner's approval, and
who wrote a reply sent from the inbox.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )
    with op.batch_alter_table("remedies", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="granted")
        )
        batch_op.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(
            batch_op.f("ck_remedies_remedy_status"),
            "status IN ('granted', 'requested', 'declined')",
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_messages_sent_by_id_users"), "users", ["sent_by_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_messages_sent_by_id_users"), type_="foreignkey")
        batch_op.drop_column("sent_by_id")
    with op.batch_alter_table("remedies", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_remedies_remedy_status"), type_="check")
        batch_op.drop_column("decided_at")
        batch_op.drop_column("status")
    op.drop_table("login_failures")
