"""Messages queued on their own (a person's reply, an acknowledgement, a notice to staff) are
sent the way follow-ups are: each has a due time, its attempts and a lease.

They used to wait as `notice`, be claimed as `notice_sending` (sent again when a claim was ten
minutes old) and end as `notice_failed`. Now they wait as `prepared`, are handed over like a
follow-up's message, and one whose fate nobody can tell ends `unknown`. A claim left by a worker
that stopped may have been sent: it becomes `uncertain`, looked up before any resend.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

messages = sa.table(
    "messages",
    sa.column("status", sa.String),
    sa.column("due_at", sa.DateTime),
    sa.column("created_at", sa.DateTime),
)
outbox = sa.table("outbox", sa.column("reference", sa.String))
# Old status -> new, and back (a message queued on its own has a due time). Going back, one
# that may have left becomes `notice_sending`, which the old code resends after ten minutes.
UPGRADE = {"notice": "prepared", "notice_sending": "uncertain", "notice_failed": "failed"}
DOWNGRADE = {
    "prepared": "notice",
    "not_sent": "notice",
    "handed_over": "notice_sending",
    "uncertain": "notice_sending",
    "failed": "notice_failed",
    "unknown": "notice_failed",
}


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
    for old, new in UPGRADE.items():
        op.execute(
            messages.update()
            .where(messages.c.status == old)
            .values(status=new, due_at=messages.c.created_at)
        )
    op.create_index(
        "ix_messages_queued",
        "messages",
        ["status", "due_at"],
        unique=False,
        sqlite_where=sa.text("due_at IS NOT NULL"),
        postgresql_where=sa.text("due_at IS NOT NULL"),
    )
    # The outbox kept old notices under "notice:<id>": a lookup now asks for "message:<id>".
    op.execute(
        outbox.update()
        .where(outbox.c.reference.like("notice:%"))
        .values(reference=sa.func.replace(outbox.c.reference, "notice:", "message:"))
    )


def downgrade() -> None:
    op.drop_index("ix_messages_queued", table_name="messages")
    op.execute(
        outbox.update()
        .where(outbox.c.reference.like("message:%"))
        .values(reference=sa.func.replace(outbox.c.reference, "message:", "notice:"))
    )
    for new, old in DOWNGRADE.items():
        op.execute(
            messages.update()
            .where(messages.c.status == new, messages.c.due_at.isnot(None))
            .values(status=old)
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_owner")
        batch_op.drop_column("attempts")
        batch_op.drop_column("due_at")
