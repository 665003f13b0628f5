"""Whether each follow-up was objected to, kept by the database and tallied: `follow_ups.objected`
is 'resolved' when one of the objections that answer it is in a resolved case, 'objected'
when it has objections and none is, NULL without any. The dashboard's funnel counted them
by reading a quarter's objections (34 000 at five million follow-ups) and looking up each
one's follow-up and case, 170-190 ms of a 90-day page; now they are summed by day in
`follow_up_tallies` like the follow-ups sent, delivered and replied to (0024).

Row triggers see every change that matters: an objection written, moved to another
follow-up or case, labelled otherwise, or removed; a case resolved or reopened. SQLite writes
one transaction at a time: its triggers write `objected` at once. On PostgreSQL a trigger that
wrote it would lock the follow-up inside transactions that lock cases too, in the order
they come (the worker's batch of replies locks a follow-up before the customer's case,
storing an email locks the case before the follow-up, a case resolved locks the case and
then its objections' follow-ups): they would deadlock, and to read a case's status while
staff change it, unseen, the trigger would have to wait for it. So PostgreSQL's triggers
only note the follow-up in `objected_rechecks` (an insert: nobody waits for it), and the
worker writes it within seconds (`figures.objections`), taking only the follow-ups and
cases no other transaction holds. (TRUNCATE messages empties `objected` at once: it holds
the whole table.) Filled from the replies already there; the tallies are counted again (20 s
at five million follow-ups on PostgreSQL).

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from scheduler.migrations.row_triggers import changed
from scheduler.migrations.tallying import WITH_OBJECTED, WITH_PRODUCT, fill, keep, stop_keeping

revision: str = "0043"
down_revision: str | None = "0042"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECHECKS = "objected_rechecks"
RECHECKS_INDEX = "ix_objected_rechecks_follow_up_id"
OBJECTION = "{row}.direction = 'inbound' AND {row}.label = 'objection'"
LINKED = f"{OBJECTION} AND {{row}}.follow_up_id IS NOT NULL"
MOVED = ("follow_up_id", "case_id", "direction", "label")  # what makes it count elsewhere
RESOLVED = "{row}.status = 'resolved'"
# The objections of a follow-up `{follow_up}`, and whether their cases are resolved.
READ = (
    "SELECT CASE WHEN {any}(objected_case.status = 'resolved') THEN 'resolved' "
    "WHEN count(*) > 0 THEN 'objected' END "
    "FROM messages AS objection "
    "LEFT JOIN cases AS objected_case ON objected_case.id = objection.case_id "
    f"WHERE objection.follow_up_id = {{follow_up}} AND {OBJECTION.format(row='objection')}"
)
# The follow-ups a case's objections answer.
OF_CASE = (
    "SELECT follow_up_id FROM messages WHERE case_id = NEW.id "
    "AND direction = 'inbound' AND label = 'objection'"
)
# What a row trigger touches: (the table, the event, when a row matters, the follow-ups).
EVENTS = {
    "messages_objected_insert": (
        "messages",
        "INSERT",
        LINKED.format(row="NEW"),
        "NEW.follow_up_id",
    ),
    "messages_objected_update": (
        "messages",
        f"UPDATE OF {', '.join(MOVED)}",
        f"({LINKED.format(row='OLD')} OR {LINKED.format(row='NEW')}) AND {{changed}}",
        "OLD.follow_up_id, NEW.follow_up_id",
    ),
    "messages_objected_delete": (
        "messages",
        "DELETE",
        LINKED.format(row="OLD"),
        "OLD.follow_up_id",
    ),
    "cases_objected_update": (
        "cases",
        "UPDATE OF status",
        f"({RESOLVED.format(row='OLD')}) <> ({RESOLVED.format(row='NEW')})",  # never null
        OF_CASE,
    ),
}


def _when(when: str, *, postgresql: bool) -> str:
    return when.format(changed=changed(MOVED, postgresql=postgresql))


# VOLATILE, as 0024's `follow_up_replied`: it reads what is committed when it runs (the worker
# calls it once it holds the follow-up and its objections' cases).
POSTGRESQL_READ = f"""
CREATE FUNCTION follow_up_objected(follow_up integer) RETURNS varchar
LANGUAGE sql VOLATILE SET search_path FROM CURRENT AS $$
    {READ.format(any="bool_or", follow_up="follow_up")}
$$
"""
# A follow-up's own row, whenever `objected` is written (by hand, say): what its objections say.
POSTGRESQL_OWN = """
CREATE FUNCTION follow_up_objected_kept() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    NEW.objected := follow_up_objected(NEW.id);
    RETURN NEW;
END
$$
"""
POSTGRESQL_OWN_TRIGGERS = {
    "follow_up_objected_insert": "BEFORE INSERT ON follow_ups FOR EACH ROW "
    "WHEN (NEW.objected IS NOT NULL)",
    "follow_up_objected_update": "BEFORE UPDATE OF objected ON follow_ups FOR EACH ROW "
    "WHEN (OLD.objected IS DISTINCT FROM NEW.objected)",
}
FUNCTIONS = {"messages": "follow_ups_objected_by_messages", "cases": "follow_ups_objected_by_cases"}


def _postgresql_function(table: str) -> str:
    """Each event's follow-ups noted for the worker (see the docstring)."""
    branches = " ".join(
        f"IF TG_OP = '{event.split()[0]}' THEN INSERT INTO {RECHECKS} (follow_up_id) "
        f"SELECT id FROM follow_ups WHERE id IN ({follow_ups}); END IF;"
        for on, event, _when, follow_ups in EVENTS.values()
        if on == table
    )
    truncated = (
        "IF TG_OP = 'TRUNCATE' THEN "
        "UPDATE follow_ups SET objected = NULL WHERE objected IS NOT NULL; END IF; "
        if table == "messages"
        else ""
    )
    return f"""
CREATE FUNCTION {FUNCTIONS[table]}() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    {truncated}{branches}
    RETURN NULL;
END
$$
"""


def _sqlite_read(row: str) -> str:
    return f"({READ.format(any='max', follow_up=f'{row}.id')})"


def _sqlite_touch(follow_ups: str) -> str:
    read = _sqlite_read("follow_ups")
    return (
        f"UPDATE follow_ups SET objected = {read} "
        f"WHERE id IN ({follow_ups}) AND objected IS NOT {read};"
    )


SQLITE_OWN_TRIGGERS = {
    "follow_up_objected_insert": "AFTER INSERT ON follow_ups WHEN NEW.objected IS NOT NULL "
    f"BEGIN {_sqlite_touch('NEW.id')} END",
    "follow_up_objected_update": "AFTER UPDATE OF objected ON follow_ups "
    f"WHEN NEW.objected IS NOT {_sqlite_read('NEW')} BEGIN {_sqlite_touch('NEW.id')} END",
}
OBJECTED_THERE = (
    "SELECT follow_up_id FROM messages WHERE direction = 'inbound' AND label = 'objection'"
)
INDEX = "ix_follow_up_tallies_sent"
INDEXED = ["sent_day", "status", "step_id", "replied", "n"]  # as migration 0024 made it


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:  # no follow-up, reply or case written between the filling and the triggers
        op.execute("LOCK TABLE follow_ups, messages, cases IN SHARE ROW EXCLUSIVE MODE")
    stop_keeping()
    op.add_column("follow_ups", sa.Column("objected", sa.String(length=8), nullable=True))
    op.execute("DELETE FROM follow_up_tallies")  # counted again below, with `objected`
    op.drop_index(INDEX, table_name="follow_up_tallies")
    objected = sa.Column("objected", sa.String(length=8), nullable=False)
    if postgresql:
        op.add_column("follow_up_tallies", objected)  # the table is empty: no default needed
    else:  # SQLite adds a column that may not be null only by building the table anew
        with op.batch_alter_table("follow_up_tallies", recreate="always") as tallies:
            tallies.add_column(objected)
    op.create_index(INDEX, "follow_up_tallies", [*INDEXED[:-1], "objected", "n"], unique=False)
    op.create_table(
        RECHECKS,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("follow_up_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_objected_rechecks")),
    )
    op.create_index(RECHECKS_INDEX, RECHECKS, ["follow_up_id"], unique=False)
    if postgresql:
        op.execute(POSTGRESQL_READ)
        op.execute(
            "UPDATE follow_ups SET objected = follow_up_objected(id) "
            f"WHERE id IN ({OBJECTED_THERE})"
        )
    else:
        op.execute(_sqlite_touch(OBJECTED_THERE))
    fill(WITH_OBJECTED)
    keep(WITH_OBJECTED, writer=True)
    if postgresql:
        op.execute(POSTGRESQL_OWN)
        for name, when in POSTGRESQL_OWN_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION follow_up_objected_kept()")
        for table in FUNCTIONS:
            op.execute(_postgresql_function(table))
        for name, (table, event, when, _follow_ups) in EVENTS.items():
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW "
                f"WHEN ({_when(when, postgresql=True)}) EXECUTE FUNCTION {FUNCTIONS[table]}()"
            )
        op.execute(  # TRUNCATE messages: no objections either
            "CREATE TRIGGER messages_objected_truncate AFTER TRUNCATE ON messages "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTIONS['messages']}()"
        )
        return
    for name, body in SQLITE_OWN_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")
    for name, (table, event, when, follow_ups) in EVENTS.items():
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} "
            f"WHEN {_when(when, postgresql=False)} BEGIN {_sqlite_touch(follow_ups)} END"
        )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("LOCK TABLE follow_ups, messages, cases IN SHARE ROW EXCLUSIVE MODE")
        op.execute("DROP TRIGGER messages_objected_truncate ON messages")
        for name, (table, *_rest) in EVENTS.items():
            op.execute(f"DROP TRIGGER {name} ON {table}")
        for name in POSTGRESQL_OWN_TRIGGERS:
            op.execute(f"DROP TRIGGER {name} ON follow_ups")
        for function in [*FUNCTIONS.values(), "follow_up_objected_kept"]:
            op.execute(f"DROP FUNCTION {function}()")
        op.execute("DROP FUNCTION follow_up_objected(integer)")
    else:
        for name in [*SQLITE_OWN_TRIGGERS, *EVENTS]:
            op.execute(f"DROP TRIGGER {name}")
    stop_keeping()
    op.drop_table(RECHECKS)
    op.drop_index(INDEX, table_name="follow_up_tallies")
    for table in ("follow_up_tallies", "follow_ups"):  # in place: SQLite 3.35 drops columns
        op.execute(f"ALTER TABLE {table} DROP COLUMN objected")
    op.create_index(INDEX, "follow_up_tallies", INDEXED, unique=False)
    op.execute("DELETE FROM follow_up_tallies")
    fill(WITH_PRODUCT)
    keep(WITH_PRODUCT, writer=True)
