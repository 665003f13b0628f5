"""Merging customers that are one person ("twins"), for the migrations that make a phone or an
email belong to one customer (0010, and 0012 for emails spelt in another case).

Twins are merged into the oldest of them: every sale, follow-up, message and case moves to it,
it keeps the strictest consent (the earliest opt-out per channel), and fills its empty fields
from the others. One audit entry per merge says what moved. The tables are spelt out here, as
they were then: migrations never import the models, which change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

customers = sa.table(
    "customers",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("phone", sa.String),
    sa.column("email", sa.String),
    sa.column("locale", sa.String),
    sa.column("timezone", sa.String),
    sa.column("sms_opt_out_at", sa.DateTime(timezone=True)),
    sa.column("sms_opt_out_via", sa.Text),
    sa.column("email_opt_out_at", sa.DateTime(timezone=True)),
    sa.column("email_opt_out_via", sa.Text),
    sa.column("unsubscribe_token", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
cases = sa.table(
    "cases",
    sa.column("id", sa.Integer),
    sa.column("customer_id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("opened_at", sa.DateTime(timezone=True)),
    sa.column("resolved_at", sa.DateTime(timezone=True)),
    sa.column("outcome", sa.Text),
)
audit_log = sa.table(
    "audit_log",
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String),
    sa.column("action", sa.String),
    sa.column("entity_type", sa.String),
    sa.column("entity_id", sa.Integer),
    sa.column("details", sa.JSON),
)
# Every table with a foreign key to customers.id (the model's `ForeignKey("customers.id")`).
OWNED = ("sales", "follow_ups", "messages", "cases")
FILLED = ("name", "phone", "email", "locale", "timezone", "unsubscribe_token")


def twin_groups(connection: sa.Connection, *, any_case: bool) -> list[list[dict[str, Any]]]:
    """Customers that share a phone or an email (`any_case`: spelt in any case), directly or
    through one another, oldest first in each group. Only customers with a repeated phone or
    email can be twins."""
    email = sa.func.lower(customers.c.email) if any_case else customers.c.email
    repeated = [
        key.in_(sa.select(key).where(key.isnot(None)).group_by(key).having(sa.func.count() > 1))
        for key in (customers.c.phone, email)
    ]
    rows = [
        dict(row._mapping)
        for row in connection.execute(
            sa.select(customers)
            .where(sa.or_(*repeated))
            .order_by(customers.c.created_at, customers.c.id)
        )
    ]
    parent = {row["id"]: row["id"] for row in rows}

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    first: dict[tuple[str, str], int] = {}
    for row in rows:
        for kind in ("phone", "email"):
            if row[kind] is not None:
                value = row[kind].lower() if any_case else row[kind]
                other = first.setdefault((kind, value), row["id"])
                parent[root(row["id"])] = root(other)
    groups: dict[int, list[dict[str, Any]]] = {}
    for row in rows:  # oldest first, as selected
        groups.setdefault(root(row["id"]), []).append(row)
    return [group for group in groups.values() if len(group) > 1]


def _earliest(group: list[dict[str, Any]], channel: str) -> tuple[Any, Any]:
    """The earliest opt-out on `channel` in the group and how it was made: the strictest."""
    said = [row for row in group if row[f"{channel}_opt_out_at"] is not None]
    if not said:
        return None, None
    row = min(said, key=lambda row: row[f"{channel}_opt_out_at"])
    return row[f"{channel}_opt_out_at"], row[f"{channel}_opt_out_via"]


def merge(
    connection: sa.Connection, group: list[dict[str, Any]], now: datetime, actor: str
) -> None:
    """Merge the group into its first (oldest) customer, with one audit entry by `actor`."""
    keep, twins = group[0], group[1:]
    ids = [twin["id"] for twin in twins]
    # One open case per customer: the earliest open one stays open, the others are closed
    # saying where the conversation goes on (they keep their messages, notes and remedies).
    open_cases = (
        connection.execute(
            sa.select(cases.c.id)
            .where(cases.c.customer_id.in_([keep["id"], *ids]), cases.c.status == "open")
            .order_by(cases.c.opened_at, cases.c.id)
        )
        .scalars()
        .all()
    )
    for case_id in open_cases[1:]:
        connection.execute(
            cases.update()
            .where(cases.c.id == case_id)
            .values(
                status="resolved",
                resolved_at=now,
                outcome=f"Closed when this customer's twins were merged: case {open_cases[0]} "
                "stays open for the same person.",
            )
        )
    moved = {}
    for table in OWNED:
        result = connection.execute(
            sa.text(f"UPDATE {table} SET customer_id = :keep WHERE customer_id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"keep": keep["id"], "ids": ids},
        )
        moved[table] = result.rowcount
    changes: dict[str, Any] = {}
    for name in FILLED:
        if keep[name] is None:
            changes[name] = next((twin[name] for twin in twins if twin[name] is not None), None)
    for channel in ("sms", "email"):
        at, via = _earliest(group, channel)
        changes[f"{channel}_opt_out_at"], changes[f"{channel}_opt_out_via"] = at, via
    dropped = {
        kind: sorted(
            {twin[kind] for twin in twins if twin[kind] is not None}
            - {changes.get(kind) or keep[kind]}
        )
        for kind in ("phone", "email")
    }
    lost_links = [
        twin["id"]
        for twin in twins
        if twin["unsubscribe_token"] is not None
        and twin["unsubscribe_token"] != changes.get("unsubscribe_token")
    ]
    connection.execute(
        customers.delete().where(customers.c.id.in_(ids))
    )  # first: a unique value moves from a twin to the row kept
    connection.execute(customers.update().where(customers.c.id == keep["id"]).values(**changes))
    connection.execute(
        audit_log.insert().values(
            at=now,
            actor=actor,
            action="customer.merge",
            entity_type="customer",
            entity_id=keep["id"],
            details={
                "merged": ids,
                "moved": moved,
                "cases_closed": open_cases[1:],
                "sms_opt_out": changes["sms_opt_out_at"] is not None,
                "email_opt_out": changes["email_opt_out_at"] is not None,
                "addresses_dropped": dropped,
                "unsubscribe_links_lost": lost_links,
            },
        )
    )


def migration_now(connection: sa.Connection) -> datetime:
    """Now, as the database stores times (naive UTC on SQLite: scheduler.models.UTCDateTime)."""
    now = datetime.now(UTC)
    return now.replace(tzinfo=None) if connection.dialect.name == "sqlite" else now
