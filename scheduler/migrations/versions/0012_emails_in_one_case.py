"""An email is one customer whatever its case: `Rosa@Example.pe` is `rosa@example.pe`.

Emails used to keep the case of their first part as typed, so a shop's system sending both
spellings made two customers of one person (two gaps between messages, two consents). Customers
whose emails differ only in case are merged into the oldest (scheduler/migrations/twins.py says
how, with an audit entry), then every email is stored in lower case, as they are from now on.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from scheduler.migrations.twins import customers, merge, migration_now, twin_groups

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTOR = "migration:0012"


def upgrade() -> None:
    connection = op.get_bind()
    now = migration_now(connection)
    for group in twin_groups(connection, any_case=True):
        merge(connection, group, now, ACTOR)
    lower = sa.func.lower(customers.c.email)
    connection.execute(customers.update().where(customers.c.email != lower).values(email=lower))


def downgrade() -> None:
    """Nothing to undo: lower-case emails and merged customers are valid before this too."""
