"""Whether each follow-up was objected to, kept by the database and tallied: `follow_ups.objected`
is 'resolved' when one of the objections that answer it is in a resolved case, 'objected'
when it has objections and none is, NULL without any. The dashboard's funnel counted them
by reading a quarter's objections (34 000 at five million follow-ups) and looking up each
one's follow-up and case, 170-190 ms of a 90-day page; now they are summed by day in
`follow_up_tallies` like the follow-ups sent, delivered and replied to (0024).

Row triggers keep it on both databases: an objection written, moved to another follow-up or
case, labelled otherwise, or removed; a case resolved or reopened. On PostgreSQL the worker's
batch of replies locks a follow-up (0024's `replied`) before the customer's case (`triage`
looks for their open case after matching the reply), and the locks are taken in that order:
a reply's trigger locks its follow-ups, then its cases (a reply in a case that is read again
as an objection locks the case too, which 0042's triggers leave alone), then reads. A reply
joining a case while staff resolve it is read one after the other, whichever comes first,
and so are two objections to one follow-up. A case's trigger holds its case and must not
wait for a follow-up (a batch holding it would wait for the case: a deadlock): it writes
those no other transaction holds and notes the others in `objected_rechecks`, which the
worker writes every few seconds (`figures.objections`). Filled from the replies already
there; the tallies are counted again (20 s at five million follow-ups on PostgreSQL).

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

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
# What a row trigger touches: (the event, when a row matters, the follow-ups, the cases).
EVENTS = {
    "messages_objected_insert": (
        "messages",
        "INSERT",
        LINKED.format(row="NEW"),
        "NEW.follow_up_id",
        "NEW.case_id",
    ),
    "messages_objected_update": (
        "messages",
        f"UPDATE OF {', '.join(MOVED)}",
        f"({LINKED.format(row='OLD')} OR {LINKED.format(row='NEW')}) AND {{changed}}",
        "OLD.follow_up_id, NEW.follow_up_id",
        "OLD.case_id, NEW.case_id",
    ),
    "messages_objected_delete": (
        "messages",
        "DELETE",
        LINKED.format(row="OLD"),
        "OLD.follow_up_id",
        "OLD.case_id",
    ),
    "cases_objected_update": (
        "cases",
        "UPDATE OF status",
        f"({RESOLVED.format(row='OLD')}) <> ({RESOLVED.format(row='NEW')})",  # never null
        OF_CASE,
        "NEW.id",  # SQLite's alone: PostgreSQL's is POSTGRESQL_CASES
    ),
}


def _changed(*, postgresql: bool) -> str:
    if postgresql:
        return (
            f"({', '.join(f'OLD.{column}' for column in MOVED)}) "
            f"IS DISTINCT FROM ({', '.join(f'NEW.{column}' for column in MOVED)})"
        )
    return "(" + " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in MOVED) + ")"


def _when(when: str, *, postgresql: bool) -> str:
    return when.format(changed=_changed(postgresql=postgresql))


# VOLATILE, as 0024's `follow_up_replied`: it reads what is committed when it runs, once the
# trigger holds the rows.
POSTGRESQL_READ = f"""
CREATE FUNCTION follow_up_objected(follow_up integer) RETURNS varchar
LANGUAGE sql VOLATILE SET search_path FROM CURRENT AS $$
    {READ.format(any="bool_or", follow_up="follow_up")}
$$
"""
# A follow-up's own row, when `objected` is written by anyone but these triggers.
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


def _postgresql_touch(follow_ups: str, cases: str) -> str:
    """The follow-ups locked first, then the cases, each in order; then read (see the
    docstring)."""
    return (
        f"PERFORM 1 FROM follow_ups WHERE id IN ({follow_ups}) ORDER BY id FOR NO KEY UPDATE; "
        f"PERFORM 1 FROM cases WHERE id IN ({cases}) ORDER BY id FOR NO KEY UPDATE; "
        "UPDATE follow_ups SET objected = follow_up_objected(id) "
        f"WHERE id IN ({follow_ups}) AND objected IS DISTINCT FROM follow_up_objected(id);"
    )


# A case resolved or reopened: its objections' follow-ups that no other transaction holds are
# written now; those held are left to the worker (`objected_rechecks`), not waited for.
POSTGRESQL_CASES = f"""
CREATE FUNCTION {{function}}() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
DECLARE
    free integer[];
BEGIN
    SELECT coalesce(array_agg(id), '{{{{}}}}') INTO free FROM (
        SELECT id FROM follow_ups WHERE id IN ({OF_CASE}) ORDER BY id
        FOR NO KEY UPDATE SKIP LOCKED
    ) AS taken;
    UPDATE follow_ups SET objected = follow_up_objected(id)
    WHERE id = ANY (free) AND objected IS DISTINCT FROM follow_up_objected(id);
    INSERT INTO {RECHECKS} (follow_up_id)
    SELECT DISTINCT follow_up_id FROM ({OF_CASE}) AS objected
    WHERE follow_up_id IS NOT NULL AND NOT follow_up_id = ANY (free);
    RETURN NULL;
END
$$
"""


def _postgresql_function(table: str) -> str:
    if table == "cases":
        return POSTGRESQL_CASES.format(function=FUNCTIONS[table])
    branches = " ".join(
        f"IF TG_OP = '{event.split()[0]}' THEN {_postgresql_touch(follow_ups, cases)} END IF;"
        for on, event, _when, follow_ups, cases in EVENTS.values()
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
        for name, (table, event, when, _follow_ups, _cases) in EVENTS.items():
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
    for name, (table, event, when, follow_ups, _cases) in EVENTS.items():
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
