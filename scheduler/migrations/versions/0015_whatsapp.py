"""WhatsApp beside SMS and email: a third channel, the customer's consent to it, and what a
WhatsApp message carries (the approved Content template sent outside the 24-hour window, a
quick-reply button pressed).

Every `channel` column's CHECK now admits "whatsapp". Going back, WhatsApp templates are removed
(an SMS one of the same name may exist) and every other WhatsApp row becomes SMS: a WhatsApp
step or message went to the same phone.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL_TABLES = ("cadence_steps", "message_templates", "follow_ups", "messages", "outbox")
SOURCES = (
    "keyword",
    "provider_keyword",
    "words",
    "provider_refusal",
    "unsubscribe_link",
    "matched",
    "staff",
)


def _channels(table: str, *channels: str) -> None:
    values = ", ".join(f"'{channel}'" for channel in channels)
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f(f"ck_{table}_channel"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f(f"ck_{table}_channel"), f"channel IN ({values})"
        )


def upgrade() -> None:
    for table in CHANNEL_TABLES:
        _channels(table, "sms", "email", "whatsapp")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("whatsapp_opt_in_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("whatsapp_opt_in_via", sa.Text()))
        batch_op.add_column(sa.Column("whatsapp_opt_out_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("whatsapp_opt_out_via", sa.Text()))
        batch_op.add_column(sa.Column("whatsapp_opt_out_source", sa.String(16)))
        values = ", ".join(f"'{source}'" for source in SOURCES)
        batch_op.create_check_constraint(
            batch_op.f("ck_customers_whatsapp_opt_out_source"),
            f"whatsapp_opt_out_source IN ({values})",
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_sid", sa.String(34)))
        batch_op.add_column(sa.Column("content_variables", sa.JSON()))
        batch_op.add_column(sa.Column("button_payload", sa.String(256)))
    op.create_index(
        "ix_messages_inbound_from",
        "messages",
        ["from_address", "created_at"],
        unique=False,
        sqlite_where=sa.text("direction = 'inbound'"),
        postgresql_where=sa.text("direction = 'inbound'"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_inbound_from", table_name="messages")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("button_payload")
        batch_op.drop_column("content_variables")
        batch_op.drop_column("content_sid")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_customers_whatsapp_opt_out_source"), type_="check")
        for column in (
            "whatsapp_opt_out_source",
            "whatsapp_opt_out_via",
            "whatsapp_opt_out_at",
            "whatsapp_opt_in_via",
            "whatsapp_opt_in_at",
        ):
            batch_op.drop_column(column)
    for table in CHANNEL_TABLES:
        rows = sa.table(table, sa.column("channel", sa.String))
        if table == "message_templates":
            op.execute(rows.delete().where(rows.c.channel == "whatsapp"))
        else:
            op.execute(rows.update().where(rows.c.channel == "whatsapp").values(channel="sms"))
        _channels(table, "sms", "email")
