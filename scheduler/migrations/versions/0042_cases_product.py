"""Each case's product, kept by the database: `cases.product_id` is the product of the sale the
case is about (`casework.context.about`): the sale whose follow-up its first answering
message answers (none, for a sale of no product), else the customer's latest purchase by the
time it opened. The inbox filtered by one product read that for every open case (25 000 at
five million follow-ups: 230-279 ms, growing with the open cases); now it reads one range of
an index of the open cases by product, in the inbox's order.

Row triggers keep it on both databases: a case written (or moved to another customer or
moment), a message answering a follow-up put in a case, moved, re-dated or removed, a
follow-up moved to another sale, and a sale recorded, changed or removed (a sale recorded late
is the latest purchase of the cases opened after it). On PostgreSQL each trigger locks the
cases it changes first, then reads, as 0024's triggers lock the follow-up: a reply and a
sale, or two replies, changing one case at once are read one after the other (an import of
late sales and a batch of replies taking two such cases in opposite orders can deadlock, and
PostgreSQL ends one of them, as with 0024's follow-ups; replies left unread are read again
a few seconds later). A sale and a case written at the same moment in two transactions cannot
see each other, though (the case is not there to lock): the worker reads the product of the
cases opened lately again (`casework.case_products.recheck`), rather than have every case
opened lock its customer, which every import locks in another order than the replies'
batches open cases. Filled from the cases already there.

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-02 16:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from scheduler.migrations.row_triggers import changed

revision: str = "0042"
down_revision: str | None = "0041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_cases_open_product"
OPEN = "status = 'open'"


def _product(case: str) -> str:
    """The product the case (a row named `case`) is about, as `context.about` finds its sale."""
    answered = (
        "(SELECT COALESCE(answered_sale.product_id, 0) FROM messages AS answering "
        "JOIN follow_ups AS answered ON answered.id = answering.follow_up_id "
        "JOIN sales AS answered_sale ON answered_sale.id = answered.sale_id "
        f"WHERE answering.case_id = {case}.id "
        "ORDER BY answering.created_at, answering.id LIMIT 1)"
    )
    latest = (
        f"(SELECT bought.product_id FROM sales AS bought WHERE bought.customer_id = "
        f"{case}.customer_id AND bought.sold_at <= {case}.opened_at "
        "ORDER BY bought.sold_at DESC, bought.id DESC LIMIT 1)"
    )
    return f"NULLIF(COALESCE({answered}, {latest}), 0)"


# The messages that decide a case's product answer a follow-up; only their writes matter.
LINKED = "{row}.case_id IS NOT NULL AND {row}.follow_up_id IS NOT NULL"
CASE_MOVED = ("customer_id", "opened_at")
MESSAGE_MOVED = ("case_id", "follow_up_id", "created_at")
SALE_MOVED = ("customer_id", "product_id", "sold_at")
TABLES = ("cases", "messages", "follow_ups", "sales")
# The cases holding a reply to these follow-ups.
ANSWERING = "SELECT case_id FROM messages WHERE follow_up_id IN ({follow_ups})"


def _events(table: str, *, postgresql: bool) -> list[tuple[str, str, str | None, str]]:
    """A table's row triggers, alike on both databases: (name, event, when the row matters,
    which cases it touches)."""
    if table == "cases":  # its own row: written, or moved to another customer or moment
        moved = changed(CASE_MOVED, postgresql=postgresql)
        return [
            ("case_product_insert", "INSERT", None, "id = NEW.id"),
            ("case_product_update", f"UPDATE OF {', '.join(CASE_MOVED)}", moved, "id = NEW.id"),
        ]
    if table == "messages":
        moved = changed(MESSAGE_MOVED, postgresql=postgresql)
        return [
            ("message_case_product_insert", "INSERT", LINKED.format(row="NEW"), "id = NEW.case_id"),
            (
                "message_case_product_update",
                f"UPDATE OF {', '.join(MESSAGE_MOVED)}",
                f"({LINKED.format(row='OLD')} OR {LINKED.format(row='NEW')}) AND {moved}",
                "id IN (OLD.case_id, NEW.case_id)",
            ),
            ("message_case_product_delete", "DELETE", LINKED.format(row="OLD"), "id = OLD.case_id"),
        ]
    if table == "follow_ups":  # the sale a follow-up is of
        return [
            (
                "follow_up_case_product_update",
                "UPDATE OF sale_id",
                changed(("sale_id",), postgresql=postgresql),
                f"id IN ({ANSWERING.format(follow_ups='NEW.id')})",
            )
        ]
    # A sale recorded late is the latest purchase of the cases its customer opened after it;
    # a sale changed is also what the cases answering its follow-ups are about.
    answering = ANSWERING.format(follow_ups="SELECT id FROM follow_ups WHERE sale_id = NEW.id")
    return [
        (
            "sale_case_product_insert",
            "INSERT",
            None,
            "customer_id = NEW.customer_id AND opened_at >= NEW.sold_at",
        ),
        (
            "sale_case_product_update",
            f"UPDATE OF {', '.join(SALE_MOVED)}",
            changed(SALE_MOVED, postgresql=postgresql),
            f"(customer_id IN (OLD.customer_id, NEW.customer_id) OR id IN ({answering}))",
        ),
        (
            "sale_case_product_delete",
            "DELETE",
            None,
            "customer_id = OLD.customer_id AND opened_at >= OLD.sold_at",
        ),
    ]


POSTGRESQL_PRODUCT = f"""
CREATE FUNCTION case_product(c cases) RETURNS integer LANGUAGE sql STABLE
SET search_path FROM CURRENT AS $$
    SELECT {_product("c")}
$$
"""
# Its own row: set before it is written.
POSTGRESQL_OWN = """
CREATE FUNCTION case_product_kept() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    NEW.product_id := case_product(NEW);
    RETURN NEW;
END
$$
"""
FUNCTIONS = {
    "messages": "cases_product_of_messages",
    "follow_ups": "cases_product_of_follow_ups",
    "sales": "cases_product_of_sales",
}


def _postgresql_function(table: str) -> str:
    """One function for a table's triggers: each event's cases locked first, in order, then
    read again, so that the read sees what a reply or a sale written at the same moment
    committed (an UPDATE that found the value unchanged would not have waited, and one that
    waited would keep what its own statement saw)."""
    branches = []
    for _name, event, _when, cases in _events(table, postgresql=True):
        branches.append(
            f"IF TG_OP = '{event.split()[0]}' THEN "
            f"PERFORM 1 FROM cases WHERE {cases} ORDER BY id FOR NO KEY UPDATE; "
            f"UPDATE cases SET product_id = case_product(cases) WHERE {cases} "
            "AND product_id IS DISTINCT FROM case_product(cases); END IF;"
        )
    return f"""
CREATE FUNCTION {FUNCTIONS[table]}() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    {" ".join(branches)}
    RETURN NULL;
END
$$
"""


def _create_triggers(table: str, *, postgresql: bool) -> None:
    for name, event, when, cases in _events(table, postgresql=postgresql):
        if postgresql:
            own = table == "cases"
            op.execute(
                f"CREATE TRIGGER {name} {'BEFORE' if own else 'AFTER'} {event} ON {table} "
                f"FOR EACH ROW {f'WHEN ({when}) ' if when else ''}EXECUTE FUNCTION "
                f"{'case_product_kept' if own else FUNCTIONS[table]}()"
            )
        else:
            product = _product("cases")
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} {f'WHEN {when} ' if when else ''}"
                f"BEGIN UPDATE cases SET product_id = {product} "
                f"WHERE {cases} AND product_id IS NOT {product}; END"
            )


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:  # no case, reply or sale written between the filling and the triggers
        op.execute("LOCK TABLE cases, messages, sales IN SHARE ROW EXCLUSIVE MODE")
    op.add_column("cases", sa.Column("product_id", sa.Integer(), nullable=True))
    if postgresql:
        op.execute(POSTGRESQL_PRODUCT)
        op.execute("UPDATE cases SET product_id = case_product(cases)")
        op.execute(POSTGRESQL_OWN)
        for table in FUNCTIONS:
            op.execute(_postgresql_function(table))
    else:
        op.execute(f"UPDATE cases SET product_id = {_product('cases')}")
    for table in TABLES:
        _create_triggers(table, postgresql=postgresql)
    op.create_index(
        INDEX,
        "cases",
        ["product_id", "first_response_due_at", "id"],
        unique=False,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.drop_index(INDEX, table_name="cases")
    for table in TABLES:
        for name, *_rest in _events(table, postgresql=postgresql):
            op.execute(f"DROP TRIGGER {name}" + f" ON {table}" * postgresql)
    if postgresql:
        for function in [*FUNCTIONS.values(), "case_product_kept"]:
            op.execute(f"DROP FUNCTION {function}()")
        op.execute("DROP FUNCTION case_product(cases)")
    op.execute("ALTER TABLE cases DROP COLUMN product_id")  # in place: SQLite 3.35 drops it
