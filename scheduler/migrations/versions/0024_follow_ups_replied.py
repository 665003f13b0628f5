"""Whether each follow-up was replied to, kept by the database and tallied: `follow_ups.replied`
is 'in_time' when a reply to it came within 7 days of its sending, 'late' when its replies all
came outside them, NULL without a reply. Row triggers on `messages` set it whenever a reply
is written, moved to another follow-up, re-dated or removed, and one on `follow_ups` when its
sending time changes; `follow_up_tallies` counts it too, so that a period's funnel (replied,
answered within 7 days) is summed by day like its sent and delivered, instead of joining a
quarter's replies to their follow-ups. Filled from the replies already there; the tallies are
counted again.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-29 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from scheduler.migrations.tallying import FIRST, WITH_REPLIED, fill, keep, stop_keeping

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WINDOW_SECONDS = 7 * 24 * 3600  # the dashboard's reply rate: answered within 7 days

# VOLATILE, as the row trigger below that calls it once the follow-up's row is locked: each
# reads the replies committed when it runs, not at its statement's start. Two workers writing
# replies to one follow-up at once: the second waits for the row, then reads both replies.
POSTGRESQL_READ = f"""
CREATE FUNCTION follow_up_replied(follow_up integer, sent timestamptz) RETURNS varchar
LANGUAGE sql VOLATILE SET search_path FROM CURRENT AS $$
    SELECT CASE
        WHEN bool_or(created_at >= sent
                     AND created_at <= sent + make_interval(secs => {WINDOW_SECONDS}))
            THEN 'in_time'
        WHEN count(*) > 0 THEN 'late'
    END
    FROM messages WHERE follow_up_id = follow_up AND direction = 'inbound'
$$
"""
# A follow-up's own row: read again when its sending time changes, or when `replied` is
# written by anyone but these triggers (they write what this reads, so it stays).
POSTGRESQL_OWN = """
CREATE FUNCTION follow_up_replied_kept() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    NEW.replied := follow_up_replied(NEW.id, NEW.sent_at);
    RETURN NEW;
END
$$
"""
POSTGRESQL_OWN_TRIGGERS = {
    "follow_up_replied_insert": "BEFORE INSERT ON follow_ups FOR EACH ROW "
    "WHEN (NEW.replied IS NOT NULL)",
    "follow_up_replied_update": "BEFORE UPDATE OF sent_at, replied ON follow_ups FOR EACH ROW "
    "WHEN (OLD.sent_at IS DISTINCT FROM NEW.sent_at OR OLD.replied IS DISTINCT FROM NEW.replied)",
}
# A reply's row triggers, alike on both databases: (the event, when a row matters, the
# follow-ups it touches). Row triggers with a condition, not statement triggers: the many
# writes of outbound messages (a delivery status, say) do not even call a function.
MESSAGE_EVENTS = {
    "insert": (
        "INSERT",
        "NEW.direction = 'inbound' AND NEW.follow_up_id IS NOT NULL",
        "NEW.follow_up_id",
    ),
    "update": (
        "UPDATE OF follow_up_id, direction, created_at",
        "{changed}",
        "OLD.follow_up_id, NEW.follow_up_id",
    ),
    "delete": (
        "DELETE",
        "OLD.direction = 'inbound' AND OLD.follow_up_id IS NOT NULL",
        "OLD.follow_up_id",
    ),
}
MOVED = ("follow_up_id", "direction", "created_at")  # what makes a reply count elsewhere
POSTGRESQL_CHANGED = (
    f"({', '.join(f'OLD.{column}' for column in MOVED)}) "
    f"IS DISTINCT FROM ({', '.join(f'NEW.{column}' for column in MOVED)})"
)
SQLITE_CHANGED = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in MOVED)


def _postgresql_touch(ids: str) -> str:
    """The follow-ups locked first, in order, then read: a writer that changes their replies
    at the same moment waits, and the read sees what it committed (an UPDATE that found the
    value unchanged would not have waited, and left the other's stale value standing)."""
    return (
        f"PERFORM 1 FROM follow_ups WHERE id IN ({ids}) ORDER BY id FOR NO KEY UPDATE; "
        "UPDATE follow_ups SET replied = follow_up_replied(id, sent_at) "
        f"WHERE id IN ({ids}) AND replied IS DISTINCT FROM follow_up_replied(id, sent_at);"
    )


POSTGRESQL_REPLIES = f"""
CREATE FUNCTION follow_ups_replied_to() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE follow_ups SET replied = NULL WHERE replied IS NOT NULL;
    ELSIF TG_OP = 'INSERT' THEN
        {_postgresql_touch(MESSAGE_EVENTS["insert"][2])}
    ELSIF TG_OP = 'DELETE' THEN
        {_postgresql_touch(MESSAGE_EVENTS["delete"][2])}
    ELSE
        {_postgresql_touch(MESSAGE_EVENTS["update"][2])}
    END IF;
    RETURN NULL;
END
$$
"""


def _sqlite_read(row: str) -> str:
    """What `replied` should say of the follow-up `row` (NEW, or the row being updated)."""
    replies = (
        f"SELECT 1 FROM messages AS reply WHERE reply.follow_up_id = {row}.id "
        "AND reply.direction = 'inbound'"
    )
    # Times are kept as text to the microsecond ('2026-11-23 15:00:00.123456'): the seconds
    # moved on, the microseconds kept as they were (strftime's %f would round them to ms).
    until = (
        f"datetime(substr({row}.sent_at, 1, 19), '+{WINDOW_SECONDS} seconds') "
        f"|| substr({row}.sent_at, 20)"
    )
    window = f"reply.created_at >= {row}.sent_at AND reply.created_at <= {until}"
    return (
        f"(CASE WHEN EXISTS ({replies} AND {window}) THEN 'in_time' "
        f"WHEN EXISTS ({replies}) THEN 'late' END)"
    )


def _sqlite_touch(ids: str) -> str:
    read = _sqlite_read("follow_ups")
    return f"UPDATE follow_ups SET replied = {read} WHERE id IN ({ids}) AND replied IS NOT {read};"


SQLITE_TRIGGERS = {
    "follow_up_replied_insert": "AFTER INSERT ON follow_ups WHEN NEW.replied IS NOT NULL "
    f"BEGIN {_sqlite_touch('NEW.id')} END",
    "follow_up_replied_update": "AFTER UPDATE OF sent_at, replied ON follow_ups "
    f"WHEN NEW.replied IS NOT {_sqlite_read('NEW')} BEGIN {_sqlite_touch('NEW.id')} END",
} | {
    f"messages_replied_{event}": f"AFTER {on} ON messages "
    f"WHEN {when.format(changed=SQLITE_CHANGED)} BEGIN {_sqlite_touch(ids)} END"
    for event, (on, when, ids) in MESSAGE_EVENTS.items()
}
POSTGRESQL_FUNCTIONS = ("follow_ups_replied_to()", "follow_up_replied_kept()")


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:  # no follow-up or reply written between the filling and the triggers
        op.execute("LOCK TABLE follow_ups, messages IN SHARE ROW EXCLUSIVE MODE")
    stop_keeping()
    op.add_column("follow_ups", sa.Column("replied", sa.String(length=8), nullable=True))
    op.execute("DELETE FROM follow_up_tallies")  # counted again below, with `replied`
    op.drop_index("ix_follow_up_tallies_sent", table_name="follow_up_tallies")
    replied = sa.Column("replied", sa.String(length=8), nullable=False)
    if postgresql:
        op.add_column("follow_up_tallies", replied)  # the table is empty: no default needed
    else:  # SQLite adds a column that may not be null only by building the table anew
        with op.batch_alter_table("follow_up_tallies", recreate="always") as table:
            table.add_column(replied)
    op.create_index(
        "ix_follow_up_tallies_sent",
        "follow_up_tallies",
        ["sent_day", "status", "step_id", "replied", "n"],
        unique=False,
    )
    replied_to = "SELECT follow_up_id FROM messages WHERE direction = 'inbound'"
    if postgresql:
        op.execute(POSTGRESQL_READ)
        op.execute(
            "UPDATE follow_ups SET replied = follow_up_replied(id, sent_at) "
            f"WHERE id IN ({replied_to})"
        )
    else:
        op.execute(_sqlite_touch(replied_to))
    fill(WITH_REPLIED)
    keep(WITH_REPLIED)
    if postgresql:
        op.execute(POSTGRESQL_OWN)
        for name, when in POSTGRESQL_OWN_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION follow_up_replied_kept()")
        op.execute(POSTGRESQL_REPLIES)
        for event, (on, when, _ids) in MESSAGE_EVENTS.items():
            op.execute(
                f"CREATE TRIGGER messages_replied_{event} AFTER {on} ON messages FOR EACH ROW "
                f"WHEN ({when.format(changed=POSTGRESQL_CHANGED)}) "
                "EXECUTE FUNCTION follow_ups_replied_to()"
            )
        op.execute(  # TRUNCATE messages: no rows, so no replies either
            "CREATE TRIGGER messages_replied_truncate AFTER TRUNCATE ON messages "
            "FOR EACH STATEMENT EXECUTE FUNCTION follow_ups_replied_to()"
        )
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("LOCK TABLE follow_ups, messages IN SHARE ROW EXCLUSIVE MODE")
        for event in [*MESSAGE_EVENTS, "truncate"]:
            op.execute(f"DROP TRIGGER messages_replied_{event} ON messages")
        for name in POSTGRESQL_OWN_TRIGGERS:
            op.execute(f"DROP TRIGGER {name} ON follow_ups")
        for function in POSTGRESQL_FUNCTIONS:
            op.execute(f"DROP FUNCTION {function}")
        op.execute("DROP FUNCTION follow_up_replied(integer, timestamptz)")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    stop_keeping()
    op.drop_index("ix_follow_up_tallies_sent", table_name="follow_up_tallies")
    for table in ("follow_up_tallies", "follow_ups"):  # in place: SQLite 3.35 drops columns
        op.execute(f"ALTER TABLE {table} DROP COLUMN replied")
    op.create_index(
        "ix_follow_up_tallies_sent",
        "follow_up_tallies",
        ["sent_day", "status", "step_id", "n"],
        unique=False,
    )
    op.execute("DELETE FROM follow_up_tallies")
    fill(FIRST)
    keep(FIRST)
