"""Follow-ups tallied by UTC day, kept by the database: `follow_up_tallies` holds, for each day
a follow-up was due (and the day it was sent), its step, channel and status, how many there
are. Triggers on `follow_ups` add a row of +n for what a statement wrote and -n for what it
replaced or removed, whatever wrote it (the app, a cascade, a hand-typed UPDATE), so the sums
are always those of the follow-ups themselves; the worker folds the rows together now and
then. Filled from the follow-ups already there.

PostgreSQL: statement triggers over transition tables (one insert per statement, not per row),
and one that empties the tallies when the follow-ups are truncated; SQLite: row triggers, the
update one only when a tallied column changed its day or value (a row that INSERT OR REPLACE
replaces is deleted with its trigger: `make_engine` sets recursive_triggers).

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-29 03:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = "due_day, sent_day, step_id, channel, status, n"

POSTGRESQL_DAYS = "(due_at AT TIME ZONE 'UTC')::date, (sent_at AT TIME ZONE 'UTC')::date"
POSTGRESQL_FUNCTION = f"""
CREATE FUNCTION follow_up_tallies_kept() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM follow_up_tallies;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO follow_up_tallies ({COLUMNS})
        SELECT {POSTGRESQL_DAYS}, step_id, channel, status, count(*)
        FROM came GROUP BY 1, 2, 3, 4, 5;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO follow_up_tallies ({COLUMNS})
        SELECT {POSTGRESQL_DAYS}, step_id, channel, status, -count(*)
        FROM gone GROUP BY 1, 2, 3, 4, 5;
    ELSE
        INSERT INTO follow_up_tallies ({COLUMNS})
        SELECT {POSTGRESQL_DAYS}, step_id, channel, status, sum(n)
        FROM (
            SELECT due_at, sent_at, step_id, channel, status, 1 AS n FROM came
            UNION ALL
            SELECT due_at, sent_at, step_id, channel, status, -1 FROM gone
        ) AS changed
        GROUP BY 1, 2, 3, 4, 5
        HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END
$$
"""
POSTGRESQL_TRANSITIONS = {
    "insert": "REFERENCING NEW TABLE AS came",
    "update": "REFERENCING OLD TABLE AS gone NEW TABLE AS came",
    "delete": "REFERENCING OLD TABLE AS gone",
    "truncate": "",  # TRUNCATE follow_ups, or sales CASCADE: no rows, so no tallies either
}

SQLITE_ROW = "date({row}.due_at), date({row}.sent_at), {row}.step_id, {row}.channel, {row}.status"
SQLITE_CHANGED = " OR ".join(
    f"{before} IS NOT {after}"
    for before, after in (
        ("date(OLD.due_at)", "date(NEW.due_at)"),
        ("date(OLD.sent_at)", "date(NEW.sent_at)"),
        ("OLD.step_id", "NEW.step_id"),
        ("OLD.channel", "NEW.channel"),
        ("OLD.status", "NEW.status"),
    )
)


def _sqlite_tally(row: str, n: int) -> str:
    return f"INSERT INTO follow_up_tallies ({COLUMNS}) VALUES ({SQLITE_ROW.format(row=row)}, {n});"


SQLITE_TRIGGERS = {
    "insert": f"AFTER INSERT ON follow_ups BEGIN {_sqlite_tally('NEW', 1)} END",
    "update": (
        "AFTER UPDATE OF due_at, sent_at, step_id, channel, status ON follow_ups "
        f"WHEN {SQLITE_CHANGED} "
        f"BEGIN {_sqlite_tally('OLD', -1)} {_sqlite_tally('NEW', 1)} END"
    ),
    "delete": f"AFTER DELETE ON follow_ups BEGIN {_sqlite_tally('OLD', -1)} END",
}


def upgrade() -> None:
    op.create_table(
        "follow_up_tallies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("due_day", sa.Date(), nullable=False),
        sa.Column("sent_day", sa.Date(), nullable=True),
        sa.Column("step_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up_tallies")),
    )
    op.create_index(
        "ix_follow_up_tallies_due",
        "follow_up_tallies",
        ["due_day", "status", "channel", "step_id", "n"],
        unique=False,
    )
    op.create_index(
        "ix_follow_up_tallies_sent",
        "follow_up_tallies",
        ["sent_day", "status", "step_id", "n"],
        unique=False,
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:  # no follow-up written between the filling below and the triggers
        op.execute("LOCK TABLE follow_ups IN SHARE ROW EXCLUSIVE MODE")
    days = POSTGRESQL_DAYS if postgresql else "date(due_at), date(sent_at)"
    op.execute(
        f"INSERT INTO follow_up_tallies ({COLUMNS}) "
        f"SELECT {days}, step_id, channel, status, count(*) FROM follow_ups "
        "GROUP BY 1, 2, 3, 4, 5"
    )
    if postgresql:
        op.execute(POSTGRESQL_FUNCTION)
        for event, transitions in POSTGRESQL_TRANSITIONS.items():
            op.execute(
                f"CREATE TRIGGER follow_up_tallies_{event} AFTER {event.upper()} ON follow_ups "
                f"{transitions} FOR EACH STATEMENT "
                "EXECUTE FUNCTION follow_up_tallies_kept()"
            )
    else:
        for event, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER follow_up_tallies_{event} {body}")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        for event in POSTGRESQL_TRANSITIONS:
            op.execute(f"DROP TRIGGER follow_up_tallies_{event} ON follow_ups")
        op.execute("DROP FUNCTION follow_up_tallies_kept()")
    else:
        for event in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER follow_up_tallies_{event}")
    op.drop_index("ix_follow_up_tallies_sent", table_name="follow_up_tallies")
    op.drop_index("ix_follow_up_tallies_due", table_name="follow_up_tallies")
    op.drop_table("follow_up_tallies")
