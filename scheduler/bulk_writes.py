"""Many rows written at once: what a batch of sends writes (its messages, the outbox's copies,
their results) without a statement per row on the server."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, Update, bindparam, column, insert, values
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine


def insert_ids(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert `rows` into `table` (its primary key `id`); their ids, in order.

    PostgreSQL: SQLAlchemy's `sort_by_parameter_order`, a few statements for any number of rows.
    SQLite does not promise the order of RETURNING, and SQLAlchemy then falls back to a
    statement per row; but SQLite writes one transaction at a time and gives each new row the
    largest id so far plus one, in the order the rows are inserted, so the ids sorted are the
    rows' in order.
    """
    if not rows:
        return []
    if session.get_bind().dialect.name == "sqlite":
        return sorted(session.scalars(insert(table).returning(table.c.id), rows))
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.scalars(statement, rows))


def update_each(
    session: Session,
    rows: Sequence[Mapping[str, Any]],
    types: Mapping[str, TypeEngine[Any]],
    build: Callable[[Mapping[str, ColumnElement[Any]]], Update],
) -> None:
    """Run the UPDATE that `build` makes of each row's values (named as in `types`) for every
    row. PostgreSQL: one statement over a VALUES list, one plan for the batch, where a
    statement per row cost a quarter of a millisecond each; SQLite (no UPDATE over VALUES
    with named columns): executemany, a loop in C on a local file."""
    if not rows:
        return
    names = list(types)
    if session.get_bind().dialect.name == "postgresql":
        each = values(*(column(name, types[name]) for name in names), name="each").data(
            [tuple(row[name] for name in names) for row in rows]
        )
        session.execute(build({name: each.c[name] for name in names}))
    else:
        statement = build({name: bindparam(name, type_=types[name]) for name in names})
        session.execute(statement, list(rows))
