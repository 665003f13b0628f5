"""The SQL that keeps `follow_up_tallies` (migration 0022; 0024 adds whether a follow-up was
replied to, 0032 its product, 0043 whether it was objected to): the function and triggers
for a list of tallied columns, the filling of the table from the follow-ups, and their
removal. Spelt out from the columns given, as each
migration knew them: migrations never import the models, which change.

PostgreSQL: statement triggers over transition tables (one insert per statement, not per row),
and one that empties the tallies when the follow-ups are truncated; SQLite: row triggers, the
update one only when a tallied column changed its day or value (a row that INSERT OR REPLACE
replaces is deleted with its trigger: `make_engine` sets recursive_triggers); from migration
0034 on, the insert one leaves an insert's tallies to a writer that counts them (WRITER).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from alembic import op


@dataclass(frozen=True)
class Tallied:
    """A column of the tallies: its name, the follow-ups' column it is read from, whether it
    is that column's UTC day, and what stands for null."""

    name: str
    source: str
    day: bool = False
    otherwise: str | None = None  # tallied instead of null (a literal)

    def postgresql(self) -> str:
        read = f"({self.source} AT TIME ZONE 'UTC')::date" if self.day else self.source
        return f"coalesce({read}, '{self.otherwise}')" if self.otherwise else read

    def sqlite(self, row: str) -> str:
        column = f"{row}.{self.source}" if row else self.source
        read = f"date({column})" if self.day else column
        return f"coalesce({read}, '{self.otherwise}')" if self.otherwise else read


FIRST = (  # the columns of migration 0022
    Tallied("due_day", "due_at", day=True),
    Tallied("sent_day", "sent_at", day=True),
    Tallied("step_id", "step_id"),
    Tallied("channel", "channel"),
    Tallied("status", "status"),
)
# Migration 0024's: whether a follow-up was replied to, 'none' without a reply, in a column
# that may not be null (a worker from before it folds the tallies without `replied` and
# would sum the replied and the not; its fold fails instead, and changes nothing).
WITH_REPLIED = (*FIRST, Tallied("replied", "replied", otherwise="none"))
# Migration 0032's: the follow-up's product, 0 for none, not null for the same reason.
WITH_PRODUCT = (*WITH_REPLIED, Tallied("product_id", "product_id", otherwise="0"))
# Migration 0043's: whether it was objected to, and the objection's case resolved ('none').
WITH_OBJECTED = (*WITH_PRODUCT, Tallied("objected", "objected", otherwise="none"))
TRANSITIONS = {
    "insert": "REFERENCING NEW TABLE AS came",
    "update": "REFERENCING OLD TABLE AS gone NEW TABLE AS came",
    "delete": "REFERENCING OLD TABLE AS gone",
    "truncate": "",  # TRUNCATE follow_ups, or sales CASCADE: no rows, so no tallies either
}
SQLITE_EVENTS = ("insert", "update", "delete")


def _names(columns: Sequence[Tallied]) -> str:
    return ", ".join([*(column.name for column in columns), "n"])


def _postgresql_function(columns: Sequence[Tallied]) -> str:
    names = _names(columns)
    read = ", ".join(column.postgresql() for column in columns)
    sources = ", ".join(column.source for column in columns)
    groups = ", ".join(str(place) for place in range(1, len(columns) + 1))
    return f"""
CREATE FUNCTION follow_up_tallies_kept() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM follow_up_tallies;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO follow_up_tallies ({names})
        SELECT {read}, count(*)
        FROM came GROUP BY {groups};
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO follow_up_tallies ({names})
        SELECT {read}, -count(*)
        FROM gone GROUP BY {groups};
    ELSE
        INSERT INTO follow_up_tallies ({names})
        SELECT {read}, sum(n)
        FROM (
            SELECT {sources}, 1 AS n FROM came
            UNION ALL
            SELECT {sources}, -1 FROM gone
        ) AS changed
        GROUP BY {groups}
        HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END
$$
"""


# Migration 0034's: while this table holds a row (in the writer's own transaction, for one
# insert of follow-ups), SQLite's insert trigger leaves that insert's tallies to the writer:
# planning a batch writes them counted, a row per kind, instead of one a follow-up.
WRITER = "follow_up_tallies_writer"


def _sqlite_triggers(columns: Sequence[Tallied], *, writer: bool) -> dict[str, str]:
    """`writer`: the insert trigger leaves the tallies to a writer that says it counts them."""

    def tally(row: str, n: int) -> str:
        values = ", ".join(column.sqlite(row) for column in columns)
        return f"INSERT INTO follow_up_tallies ({_names(columns)}) VALUES ({values}, {n});"

    changed = " OR ".join(
        f"{column.sqlite('OLD')} IS NOT {column.sqlite('NEW')}" for column in columns
    )
    sources = ", ".join(column.source for column in columns)
    unless = f"WHEN NOT EXISTS (SELECT 1 FROM {WRITER}) " if writer else ""
    return {
        "insert": f"AFTER INSERT ON follow_ups {unless}BEGIN {tally('NEW', 1)} END",
        "update": (
            f"AFTER UPDATE OF {sources} ON follow_ups WHEN {changed} "
            f"BEGIN {tally('OLD', -1)} {tally('NEW', 1)} END"
        ),
        "delete": f"AFTER DELETE ON follow_ups BEGIN {tally('OLD', -1)} END",
    }


def fill(columns: Sequence[Tallied]) -> None:
    """The tallies of the follow-ups there now (the table empty, writers kept out)."""
    postgresql = op.get_bind().dialect.name == "postgresql"
    read = ", ".join(column.postgresql() if postgresql else column.sqlite("") for column in columns)
    groups = ", ".join(str(place) for place in range(1, len(columns) + 1))
    op.execute(
        f"INSERT INTO follow_up_tallies ({_names(columns)}) "
        f"SELECT {read}, count(*) FROM follow_ups GROUP BY {groups}"
    )


def keep(columns: Sequence[Tallied], *, writer: bool = False) -> None:
    """The triggers that keep the tallies of these columns from now on. `writer`: SQLite's
    insert trigger leaves an insert's tallies to a writer that counts them (WRITER): every
    migration after 0034 that makes the triggers again passes it."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_postgresql_function(columns))
        statement_triggers("follow_up_tallies")
    else:
        for event, body in _sqlite_triggers(columns, writer=writer).items():
            op.execute(f"CREATE TRIGGER follow_up_tallies_{event} {body}")


def keep_inserts(columns: Sequence[Tallied], *, writer: bool) -> None:
    """SQLite: the insert trigger made again, as `keep` makes it."""
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER follow_up_tallies_insert")
        insert = _sqlite_triggers(columns, writer=writer)["insert"]
        op.execute(f"CREATE TRIGGER follow_up_tallies_insert {insert}")


def stop_keeping() -> None:
    """No more triggers keeping the tallies (whichever columns they kept)."""
    if op.get_bind().dialect.name == "postgresql":
        drop_statement_triggers("follow_up_tallies")
    else:
        for event in SQLITE_EVENTS:
            op.execute(f"DROP TRIGGER follow_up_tallies_{event}")


def statement_triggers(name: str) -> None:
    """PostgreSQL: the function `{name}_kept()` run after every statement that writes
    follow-ups, over its rows before (`gone`) and after (`came`): triggers `{name}_{event}`."""
    for event, transitions in TRANSITIONS.items():
        op.execute(
            f"CREATE TRIGGER {name}_{event} AFTER {event.upper()} ON follow_ups "
            f"{transitions} FOR EACH STATEMENT EXECUTE FUNCTION {name}_kept()"
        )


def drop_statement_triggers(name: str) -> None:
    """PostgreSQL: `statement_triggers(name)` and their function gone."""
    for event in TRANSITIONS:
        op.execute(f"DROP TRIGGER {name}_{event} ON follow_ups")
    op.execute(f"DROP FUNCTION {name}_kept()")
