"""One customer per person: a phone, or an email, belongs to one customer at most.

Parallel sales of one new customer used to create twins (customers sharing a phone or an email),
each with its own gap between messages and its own consent. Twins are merged into the oldest of
them (scheduler/migrations/twins.py says how). Then the phone and the email become unique
(NULLs never clash, on either database, so a customer may have one without the other).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from scheduler.migrations.twins import merge, migration_now, twin_groups

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTOR = "migration:0010"


def upgrade() -> None:
    connection = op.get_bind()
    now = migration_now(connection)
    for group in twin_groups(connection, any_case=False):
        merge(connection, group, now, ACTOR)
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_phone")
        batch_op.drop_index("ix_customers_email")
        batch_op.create_index("uq_customers_phone", ["phone"], unique=True)
        batch_op.create_index("uq_customers_email", ["email"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("uq_customers_email")
        batch_op.drop_index("uq_customers_phone")
        batch_op.create_index("ix_customers_email", ["email"], unique=False)
        batch_op.create_index("ix_customers_phone", ["phone"], unique=False)
