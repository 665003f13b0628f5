"""Many rows written at once, without a statement per row on the server: the sales, customers,
follow-ups and audit entries of a batch of sales; the messages, outbox copies and results of
a batch of sends."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Dialect,
    Select,
    String,
    Table,
    Update,
    any_,
    bindparam,
    column,
    func,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from scheduler.db import chunked


def insert_ids(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert `rows` (each with the same keys) into `table` (its primary key `id`); their ids,
    in the order of the rows.

    A database hands out ids increasing in the order a statement inserts its rows, so the ids
    sorted are the rows' in order: SQLite inserts a VALUES list in order (`insert_rows`'s, one
    statement up to SQLITE_PARAMETERS values: no SQLAlchemy compiling or converting row by
    row); PostgreSQL, the rows of an array each, by their place (one statement of a few
    parameters, the same text whatever the count: prepared once, no list of thousands of
    parameters to parse).
    """
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return sorted(_insert_arrays(session, table, rows))
    names = list(rows[0])
    values = [[row[name] for name in names] for row in rows]
    return sorted(id_ for (id_,) in _insert_values(session, table, names, values, " RETURNING id"))


SQLITE_PARAMETERS = 32_766  # SQLite's most parameters a statement since 3.32


def insert_rows(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignoring_conflicts: bool = False,
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Insert `rows`, each the values of `columns`, in a few statements; every column with a
    default of its own must be given (it is not filled in here). `ignoring_conflicts`: ON
    CONFLICT DO NOTHING on any unique index, so that rows another transaction inserted first
    (even uncommitted: PostgreSQL waits for its outcome) are left as they are, and parallel
    requests converge on one row instead of failing. `returning`: these columns of the rows
    inserted (not of those a conflict left out), in no particular order, read as a query reads
    them: the new ids without a query to read them back.

    On SQLite as multi-row VALUES, each value object converted for the database once: run one
    statement a row, as an executemany is, a table's triggers (the follow-ups' tallies) make
    each open its own statement journal, which made the insert four times as long; and
    SQLAlchemy converts every value of every row (the creation time, the statuses, the empty
    facts of each follow-up of a batch), which took as long as planning them. PostgreSQL:
    Core's pipelined executemany, faster there than the VALUES."""
    if not rows:
        return []
    defaulted = {c.name for c in table.c if c.default is not None}
    if not defaulted <= set(columns):
        raise ValueError(f"{table.name}: give {', '.join(sorted(defaulted - set(columns)))}")
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert  # SQLite: unused

        statement = postgresql_insert(table)
        if ignoring_conflicts:
            statement = statement.on_conflict_do_nothing()
        params = [dict(zip(columns, row, strict=True)) for row in rows]
        if not returning:
            session.execute(statement, params)
            return []
        returns = statement.returning(*(table.c[name] for name in returning))
        return [tuple(row) for row in session.execute(returns, params)]
    tail = " ON CONFLICT DO NOTHING" if ignoring_conflicts else ""
    if returning:
        quote = session.get_bind().dialect.identifier_preparer.quote
        tail += f" RETURNING {', '.join(map(quote, returning))}"
    returned = _insert_values(session, table, columns, rows, tail)
    return _read(session.get_bind().dialect, [table.c[name].type for name in returning], returned)


def _insert_values(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    tail: str,
) -> list[Any]:
    """SQLite: `rows` inserted as multi-row VALUES, a statement for each SQLITE_PARAMETERS
    values, `tail` after each; the rows they return (`tail`'s RETURNING) as the driver gives
    them, read as they run."""
    connection = session.connection()
    dialect = connection.dialect
    processors = [processor(table.c[name].type, dialect) for name in columns]
    quote = dialect.identifier_preparer.quote
    head = f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, columns))}) VALUES "
    one = "(" + ", ".join("?" * len(columns)) + ")"
    size = min(dialect.insertmanyvalues_page_size, SQLITE_PARAMETERS // len(columns))
    returned: list[Any] = []
    for chunk in chunked(rows, size):
        converted = [
            _converted(values, process)
            for values, process in zip(zip(*chunk, strict=True), processors, strict=True)
        ]
        values = tuple(chain.from_iterable(zip(*converted, strict=True)))
        statement = head + ", ".join([one] * len(chunk)) + tail
        result = connection.exec_driver_sql(statement, values)
        returned += result.fetchall() if result.returns_rows else ()
    return returned


def _read(
    dialect: Dialect, types: Sequence[TypeEngine[Any]], rows: Sequence[Sequence[Any]]
) -> list[tuple[Any, ...]]:
    """`rows` as the driver gave them, each value read as its column's type reads it (as
    SQLAlchemy's queries would: SQLite's times made datetimes again)."""
    processors = [type_.dialect_impl(dialect).result_processor(dialect, None) for type_ in types]
    if not any(processors):
        return [tuple(row) for row in rows]
    return [
        tuple(
            value if process is None else process(value)
            for value, process in zip(row, processors, strict=True)
        )
        for row in rows
    ]


def _converted(values: Sequence[Any], process: Callable[[Any], Any] | None) -> Sequence[Any]:
    """`values` as the column's type writes them (as SQLAlchemy's statements would), each
    object converted once: the rows of a batch share their creation time, their statuses,
    their dates when sold together. By identity, not equality: 1 and True, or 1 and
    Decimal(1), are equal but not written alike."""
    if process is None:
        return values
    ids = list(map(id, values))
    done = {key: process(value) for key, value in dict(zip(ids, values, strict=True)).items()}
    return list(map(done.__getitem__, ids))


def processor(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """How `type_` writes a value for `dialect`, as SQLAlchemy's statements would."""
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _insert_arrays(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """PostgreSQL: `rows` as an array of values a column, unnested in their order; a column
    with one value for every row (a batch's creation time, direction and status; a null) as
    that value alone, not an array of a thousand copies to write and unnest. The first column
    is always an array: it counts the rows."""
    dialect = session.get_bind().dialect
    names = list(rows[0])
    selected, unnested, scalars, arrays = [], [], [], []
    for name in names:
        type_ = table.c[name].type
        values = _converted([row[name] for row in rows], processor(type_, dialect))
        cast = f"%s::{type_.compile(dialect=dialect)}"
        if name != names[0] and all(value is values[0] for value in values):
            selected.append(cast)
            scalars.append(values[0])
        else:
            selected.append(name)
            unnested.append((name, f"{cast}[]"))
            arrays.append(values)
    listed = ", ".join(name for name, _ in unnested)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(selected)} "
        f"FROM unnest({', '.join(cast for _, cast in unnested)}) "
        f"WITH ORDINALITY AS rows_given ({listed}, place) ORDER BY place RETURNING id"
    )
    return list(session.connection().exec_driver_sql(sql, (*scalars, *arrays)).scalars())


def update_each(
    session: Session,
    key: ColumnElement[Any],
    rows: Sequence[Mapping[str, Any]],
    types: Mapping[str, TypeEngine[Any]],
    build: Callable[[Mapping[str, ColumnElement[Any]]], Update],
) -> None:
    """Run the UPDATE that `build` makes of each row's values (named as in `types`) for every
    row, as one statement, each row's values on the row whose `key` (its table's primary key)
    is the first of them: PostgreSQL over arrays of the values (the same text and plan whatever
    the count); SQLite over a JSON array of them (`_json_each`: an executemany would open a
    statement journal per row for the follow-ups' triggers, four times the cost).

    On PostgreSQL the keys are also looked up as `= ANY` of their array: joined to the unnested
    values alone, a batch was planned as a hash of the whole table, read in full at each batch
    (6 ms of a send's 23 at 40 000 follow-ups, growing with the table)."""
    if not rows:
        return
    names = list(types)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY  # here: SQLite never loads the dialect

        arrays = {name: bindparam(name, type_=ARRAY(types[name])) for name in names}
        arrayed = (
            func.unnest(*arrays.values())
            .table_valued(*(column(name, types[name]) for name in names), name="each")
            .render_derived()  # AS each (m, p, ...)
        )
        statement = build({name: arrayed.c[name] for name in names}).where(
            key == arrayed.c[names[0]], key == any_(arrays[names[0]])
        )
        session.execute(statement, {name: [row[name] for row in rows] for name in names})
        return
    each = _json_each(types).cte("each")
    statement = build({name: each.c[name] for name in names}).where(key == each.c[names[0]])
    session.execute(statement, {"each": _json_rows(session, types, rows)})


def _json_each(types: Mapping[str, TypeEngine[Any]]) -> Select[Any]:
    """SQLite: the rows of one JSON array of arrays (the parameter `each`, `_json_rows`), a
    column each of `types`. One parameter and the same text whatever the count: SQLAlchemy
    compiles it once, where a VALUES list of a batch's rows took longer to compile and convert
    than the database took to run it."""
    listed = func.json_each(bindparam("each", type_=String())).table_valued("value")
    return select(
        *(
            type_coerce(func.json_extract(listed.c.value, f"$[{place}]"), type_).label(name)
            for place, (name, type_) in enumerate(types.items())
        )
    ).select_from(listed)


def _json_rows(
    session: Session, types: Mapping[str, TypeEngine[Any]], rows: Sequence[Mapping[str, Any]]
) -> str:
    """`rows` as the JSON array `_json_each` reads, each value as its type writes it for SQLite
    (times as text, enums as their values, JSON columns as their text)."""
    dialect = session.get_bind().dialect
    columns = [
        _converted([row[name] for row in rows], processor(type_, dialect))
        for name, type_ in types.items()
    ]
    return json.dumps(list(zip(*columns, strict=True)), ensure_ascii=False)
