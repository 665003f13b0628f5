"""A follow-up's `replied` is read again, when its sending time changes, only if it has
replies: NULL means none (the replies' own triggers set it whenever one is written, moved or
removed, migration 0024), and a follow-up without any stays without any when it is sent. The
trigger that read them at every send (an index probe and a function call each, 10 of the
315 microseconds a follow-up sent took on PostgreSQL) now runs where there is something to
read: a reply that came before its send was recorded, a sending time re-dated by hand, or
`replied` typed by hand.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGER = "follow_up_replied_update"
POSTGRESQL = (
    f"CREATE TRIGGER {TRIGGER} BEFORE UPDATE OF sent_at, replied ON follow_ups FOR EACH ROW "
    "WHEN ({when}) EXECUTE FUNCTION follow_up_replied_kept()"
)
POSTGRESQL_BEFORE = (
    "OLD.sent_at IS DISTINCT FROM NEW.sent_at OR OLD.replied IS DISTINCT FROM NEW.replied"
)
POSTGRESQL_AFTER = (
    "OLD.replied IS DISTINCT FROM NEW.replied "
    "OR (OLD.sent_at IS DISTINCT FROM NEW.sent_at AND OLD.replied IS NOT NULL)"
)
# SQLite's trigger reads the replies in its condition: the same trigger, a test before it.
SQLITE_BEFORE = "WHEN NEW.replied IS NOT ("
SQLITE_AFTER = "WHEN (OLD.replied IS NOT NULL OR NEW.replied IS NOT NULL) AND NEW.replied IS NOT ("


def _replace(before: str, after: str, *, postgresql_when: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {TRIGGER} ON follow_ups")
        op.execute(POSTGRESQL.format(when=postgresql_when))
        return
    sql = (
        op.get_bind()
        .exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (TRIGGER,)
        )
        .scalar_one()
    )
    assert sql.count(before) == 1, sql  # as migration 0024 (or this one) made it
    op.execute(f"DROP TRIGGER {TRIGGER}")
    op.execute(sql.replace(before, after))


def upgrade() -> None:
    _replace(SQLITE_BEFORE, SQLITE_AFTER, postgresql_when=POSTGRESQL_AFTER)


def downgrade() -> None:
    _replace(SQLITE_AFTER, SQLITE_BEFORE, postgresql_when=POSTGRESQL_BEFORE)
