"""Each customer's latest follow-up sent, kept by the database in `last_sends`: the dashboard
counts the customers messaged in a period to this day from it (the customers whose latest
send falls in the period), where it counted the distinct customers of every send of the
period (a quarter of a busy shop, 1 089 494 sends: 459 ms, now a range of this table's
index). A narrow table of its own, not a column of `customers`: each send moves it, and a
customer's row is wide and in six indexes.

A follow-up counts once it is sent or delivered, at its `sent_at`. The triggers move a
customer's latest send forward when one goes out, and read it again from their follow-ups
when one leaves those statuses, is re-dated, moves to another customer or is deleted (rare:
a failure reported after the sending, an erasure, a merge, a hand-made change).

PostgreSQL: statement triggers over transition tables, as the tallies' (a dispatch batch is
one statement, whose follow-ups are read by their id before and after it); SQLite: row
triggers.

Revision ID: 0036
Revises: 0035
Create Date: 2026-11-30 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from scheduler.migrations.tallying import drop_statement_triggers, statement_triggers

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SENT = "('sent', 'delivered')"
IS_SENT = f"{{row}}.status IN {SENT} AND {{row}}.sent_at IS NOT NULL"


def _read_again(ids: str) -> str:
    """The latest send of the customers `ids` (a list or a query), read from their follow-ups
    (`ix_follow_ups_customer_sent`); none for those who have none left."""
    sent = IS_SENT.format(row="follow_ups")
    return (
        "INSERT INTO last_sends (customer_id, sent_at) SELECT customer_id, max(sent_at) "
        f"FROM follow_ups WHERE customer_id IN ({ids}) AND {sent} GROUP BY customer_id "
        "ON CONFLICT (customer_id) DO UPDATE SET sent_at = excluded.sent_at; "
        f"DELETE FROM last_sends WHERE customer_id IN ({ids}) AND NOT EXISTS (SELECT 1 "
        f"FROM follow_ups WHERE follow_ups.customer_id = last_sends.customer_id AND {sent});"
    )


def _forward(rows: str) -> str:
    """Each customer's latest send moved on to the latest of `rows` (customer_id, sent_at)."""
    return (
        f"INSERT INTO last_sends (customer_id, sent_at) {rows} "
        "ON CONFLICT (customer_id) DO UPDATE SET sent_at = excluded.sent_at "
        "WHERE last_sends.sent_at < excluded.sent_at;"
    )


# A row (`gone` before a statement, `came` after it) whose customer's latest send may go
# back: it was sent, and it no longer is, is earlier, is another customer's, or is gone.
WENT_BACK = (
    f"{IS_SENT.format(row='gone')} AND (came.id IS NULL OR NOT ({IS_SENT.format(row='came')}) "
    "OR came.sent_at < gone.sent_at OR came.customer_id <> gone.customer_id)"
)
# One that moves its customer's latest send on: sent now, and not before, or not then, or
# not theirs (the delivered ones of a status report move nothing).
WENT_ON = (
    f"{IS_SENT.format(row='came')} AND (gone.id IS NULL OR NOT ({IS_SENT.format(row='gone')}) "
    "OR gone.sent_at <> came.sent_at OR gone.customer_id <> came.customer_id)"
)
BOTH = "FROM came FULL JOIN gone ON gone.id = came.id"
LEFT = f"SELECT gone.customer_id {BOTH} WHERE {WENT_BACK}"
ARRIVED = (
    f"SELECT came.customer_id, max(came.sent_at) {BOTH} WHERE {WENT_ON} "
    "GROUP BY came.customer_id ORDER BY came.customer_id"
)
MOVED_ON = f"SELECT came.customer_id {BOTH} WHERE {WENT_ON}"
GONE = f"SELECT customer_id FROM gone WHERE {IS_SENT.format(row='gone')}"
CAME = (
    f"SELECT customer_id, max(sent_at) FROM came WHERE {IS_SENT.format(row='came')} "
    "GROUP BY customer_id ORDER BY customer_id"
)


def _hold(ids: str) -> str:
    """PostgreSQL: the rows of the customers `ids` held, in order of customer, by one
    statement; a customer without one gets one for the while ('-infinity', which the rest of
    the trigger reads again or moves on). A customer's latest send is read again only with
    its row held, so that a send committed meanwhile is read, or waits and then moves it on.
    Every statement takes its rows in order of customer in one pass (this, or an upsert that
    only moves them on), a row not there yet included: two at once never wait for each other
    in a circle."""
    return (
        "INSERT INTO last_sends (customer_id, sent_at) SELECT customer_id, '-infinity' "
        f"FROM ({ids}) AS touched GROUP BY customer_id ORDER BY customer_id "
        "ON CONFLICT (customer_id) DO UPDATE SET sent_at = last_sends.sent_at;"
    )


POSTGRESQL_FUNCTION = f"""
CREATE FUNCTION last_sends_kept() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM last_sends;
    ELSIF TG_OP = 'INSERT' THEN
        {_forward(CAME)}
    ELSIF TG_OP = 'DELETE' THEN
        {_hold(GONE)}
        {_read_again(GONE)}
    ELSE  -- each part only when a row could need it (a claim, none; a sending, the second)
        IF EXISTS ({GONE}) THEN  -- every row it moves held first, in order, then moved
            {_hold(f"{LEFT} UNION {MOVED_ON}")}
            {_read_again(LEFT)}
        END IF;
        IF EXISTS (SELECT 1 FROM came WHERE {IS_SENT.format(row="came")}) THEN
            {_forward(ARRIVED)}
        END IF;
    END IF;
    RETURN NULL;
END
$$
"""


def _sqlite(condition: str) -> str:
    return condition.replace("gone.", "OLD.").replace("came.", "NEW.")


ONE = "SELECT NEW.customer_id, NEW.sent_at WHERE true"  # (`WHERE`: SQLite's upsert grammar)
UPDATED = "AFTER UPDATE OF status, sent_at, customer_id ON follow_ups WHEN"
SQLITE_TRIGGERS = {
    "insert": f"AFTER INSERT ON follow_ups WHEN {_sqlite(IS_SENT.format(row='came'))} "
    f"BEGIN {_forward(ONE)} END",
    "on": f"{UPDATED} {_sqlite(WENT_ON.replace('gone.id IS NULL OR ', ''))} "
    f"BEGIN {_forward(ONE)} END",
    "back": f"{UPDATED} {_sqlite(WENT_BACK.replace('came.id IS NULL OR ', ''))} "
    f"BEGIN {_read_again('OLD.customer_id')} END",
    "delete": f"AFTER DELETE ON follow_ups WHEN {_sqlite(IS_SENT.format(row='gone'))} "
    f"BEGIN {_read_again('OLD.customer_id')} END",
}


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:  # no follow-up sent between the filling and the triggers
        op.execute("LOCK TABLE follow_ups IN SHARE ROW EXCLUSIVE MODE")
    op.create_table(
        "last_sends",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_last_sends_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_last_sends")),
    )
    op.create_index("ix_last_sends_sent_at", "last_sends", ["sent_at", "customer_id"])
    op.execute(
        "INSERT INTO last_sends (customer_id, sent_at) SELECT customer_id, max(sent_at) "
        f"FROM follow_ups WHERE {IS_SENT.format(row='follow_ups')} GROUP BY customer_id"
    )
    if postgresql:
        op.execute(POSTGRESQL_FUNCTION)
        statement_triggers("last_sends")
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER last_sends_{name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        drop_statement_triggers("last_sends")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER last_sends_{name}")
    op.drop_index("ix_last_sends_sent_at", table_name="last_sends")
    op.drop_table("last_sends")
