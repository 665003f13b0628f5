"""Searches by words, on PostgreSQL, read trigram indexes (pg_trgm) instead of every row: the
conversations of cases (the inbox), what went out (the outbox), and customers' names, emails
and phones. A word nobody wrote took 5 s among a million messages, read newest first.

The extension is created when the database lets this user (pg_trgm is trusted: a database's
owner may); where it cannot be, the indexes are left out and searches read the rows, slower
but the same. SQLite has no such index: these are PostgreSQL's alone (`schema.POSTGRESQL_ONLY`).

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-29 10:30:00
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alembic import op
from sqlalchemy.exc import DBAPIError

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(__name__)
# name: (table, columns, where)
INDEXES = {
    "ix_messages_case_words": ("messages", "body gin_trgm_ops", "case_id IS NOT NULL"),
    "ix_messages_outbound_words": ("messages", "body gin_trgm_ops", "direction = 'outbound'"),
    "ix_customers_words": (
        "customers",
        "name gin_trgm_ops, email gin_trgm_ops, phone gin_trgm_ops",
        None,
    ),
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as error:
        log.warning("pg_trgm is not available (%s): searches by words read every row", error)
        return
    for name, (table, columns, where) in INDEXES.items():
        condition = f" WHERE {where}" if where else ""
        op.execute(f"CREATE INDEX {name} ON {table} USING gin ({columns}){condition}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
