"""Each reply to a follow-up knows that follow-up's product, kept by the database
(`messages.product_id`: set when a reply is written or moved to another follow-up, moved with
the follow-up's product), and the objections are read along an index of their own holding
what the dashboard's complaints and funnel read of them: a quarter's 31 000 objections are
one range of it, where each was read from its row and its follow-up's (160 ms of 90 days at
5 000 000 follow-ups). The replies' index by time holds the product too: one product's
replies and ratings are read from it, not each joined to its follow-up. A reply answering
no follow-up keeps none: its product is that of the customer's latest purchase by then,
read when counted, as before.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-01 07:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INBOUND = "direction = 'inbound'"
OBJECTIONS = f"{INBOUND} AND label = 'objection'"
OBJECTIONS_INDEX = "ix_messages_objections"
OBJECTIONS_COLUMNS = [
    "created_at",
    "id",
    "customer_id",
    "follow_up_id",
    "product_id",
    "case_id",
    "themes_read_with",
    "themes",
]
# The replies by time with what a period's figures count of them, now their product too: one
# product's replies and ratings are read from it alone, not each joined to its follow-up.
INBOUND_INDEX = "ix_messages_inbound_time"
INBOUND_COLUMNS = ["created_at", "follow_up_id", "label", "score", "case_id"]


def _product(row: str) -> str:
    """What a message's product should be: its follow-up's, for a reply to one."""
    return (
        f"(CASE WHEN {row}.direction = 'inbound' THEN "
        f"(SELECT product_id FROM follow_ups WHERE follow_ups.id = {row}.follow_up_id) END)"
    )


MOVED = ("follow_up_id", "direction", "product_id")  # what changes a message's product
POSTGRESQL_FUNCTIONS = {
    "reply_product_kept": f"""
CREATE FUNCTION reply_product_kept() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    NEW.product_id := {_product("NEW")};
    RETURN NEW;
END
$$
""",
    "follow_up_product_replies": """
CREATE FUNCTION follow_up_product_replies() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE messages SET product_id = NEW.product_id
    WHERE follow_up_id = NEW.id AND direction = 'inbound';
    RETURN NULL;
END
$$
""",
}
POSTGRESQL_TRIGGERS = {  # name: table, when, function
    "reply_product_insert": (
        "messages",
        "BEFORE INSERT ON messages FOR EACH ROW "
        "WHEN (NEW.direction = 'inbound' AND NEW.follow_up_id IS NOT NULL "
        "OR NEW.product_id IS NOT NULL)",
        "reply_product_kept",
    ),
    "reply_product_update": (
        "messages",
        f"BEFORE UPDATE OF {', '.join(MOVED)} ON messages FOR EACH ROW "
        f"WHEN (({', '.join(f'OLD.{c}' for c in MOVED)}) "
        f"IS DISTINCT FROM ({', '.join(f'NEW.{c}' for c in MOVED)}))",
        "reply_product_kept",
    ),
    "follow_up_product_replies": (
        "follow_ups",
        "AFTER UPDATE OF product_id ON follow_ups FOR EACH ROW "
        "WHEN (OLD.product_id IS DISTINCT FROM NEW.product_id)",
        "follow_up_product_replies",
    ),
}


def _sqlite_keep(row: str) -> str:
    return (
        f"UPDATE messages SET product_id = {_product('messages')} "
        f"WHERE id = {row}.id AND product_id IS NOT {_product('messages')};"
    )


SQLITE_TRIGGERS = {
    "reply_product_insert": "AFTER INSERT ON messages "
    "WHEN NEW.direction = 'inbound' AND NEW.follow_up_id IS NOT NULL "
    f"OR NEW.product_id IS NOT NULL BEGIN {_sqlite_keep('NEW')} END",
    "reply_product_update": f"AFTER UPDATE OF {', '.join(MOVED)} ON messages "
    f"WHEN NEW.product_id IS NOT {_product('NEW')} BEGIN {_sqlite_keep('NEW')} END",
    "follow_up_product_replies": "AFTER UPDATE OF product_id ON follow_ups "
    "WHEN OLD.product_id IS NOT NEW.product_id BEGIN UPDATE messages "
    "SET product_id = NEW.product_id WHERE follow_up_id = NEW.id AND direction = 'inbound' "
    "AND product_id IS NOT NEW.product_id; END",
}


def _index(name: str, columns: list[str], rows: str) -> None:
    op.create_index(
        name,
        "messages",
        columns,
        unique=False,
        sqlite_where=sa.text(rows),
        postgresql_where=sa.text(rows),
    )


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:  # no reply or product written between the filling and the triggers
        op.execute("LOCK TABLE follow_ups, messages IN SHARE ROW EXCLUSIVE MODE")
    op.add_column("messages", sa.Column("product_id", sa.Integer(), nullable=True))
    if postgresql:
        op.execute(
            "UPDATE messages SET product_id = follow_ups.product_id FROM follow_ups "
            "WHERE follow_ups.id = messages.follow_up_id AND messages.direction = 'inbound' "
            "AND follow_ups.product_id IS NOT NULL"
        )
        for function in POSTGRESQL_FUNCTIONS.values():
            op.execute(function)
        for name, (_table, when, function) in POSTGRESQL_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {function}()")
    else:
        op.execute(
            f"UPDATE messages SET product_id = {_product('messages')} "
            "WHERE direction = 'inbound' AND follow_up_id IS NOT NULL"
        )
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    op.drop_index(INBOUND_INDEX, table_name="messages")
    _index(INBOUND_INDEX, [*INBOUND_COLUMNS, "product_id"], INBOUND)
    _index(OBJECTIONS_INDEX, OBJECTIONS_COLUMNS, OBJECTIONS)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for index in (OBJECTIONS_INDEX, INBOUND_INDEX):
        op.drop_index(index, table_name="messages")
    if postgresql:
        for name, (table, _when, _function) in POSTGRESQL_TRIGGERS.items():
            op.execute(f"DROP TRIGGER {name} ON {table}")
        for function in POSTGRESQL_FUNCTIONS:
            op.execute(f"DROP FUNCTION {function}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.execute("ALTER TABLE messages DROP COLUMN product_id")  # in place: SQLite 3.35 drops it
    _index(INBOUND_INDEX, INBOUND_COLUMNS, INBOUND)
