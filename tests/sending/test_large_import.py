"""Large imports: stored chunk by chunk, so a failure part way keeps what came before it.

The 100 000-row run on both databases is `bench/import_large.py`; here the chunk is made small.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from scheduler import erasure
from scheduler.config import Config
from scheduler.db import chunked
from scheduler.defaults import install_defaults
from scheduler.models import Customer, FollowUp, Sale
from scheduler.sending import csv_import
from scheduler.sending.csv_import import (
    ImportCheck,
    Storing,
    check_sales_csv,
    check_table,
    import_sales,
    read_table,
)
from scheduler.sending.intake import validate_sale
from scheduler.sending.sales import skipped_as_late_by_id
from tests.factories import NOW, sale_input

ROWS = 2_000


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def _file(rows: int = ROWS) -> str:
    lines = ["external_id,sold_at,customer_name,phone,product_sku"]
    lines += [f"L-{n},2026-11-20T10:00,Cliente {n},9{n:08d},SKU-{n % 7}" for n in range(rows)]
    return "\n".join(lines) + "\n"


def _check(config: Config, rows: int = ROWS) -> ImportCheck:
    return check_sales_csv(_file(rows), config, now=NOW)


def _count(session: Session, model: type[Any]) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_an_import_is_stored_chunk_by_chunk(session: Session, config: Config) -> None:
    install_defaults(session, NOW)
    session.commit()
    done = import_sales(session, _check(config), config=config, now=NOW, actor="t", chunk=400)
    assert (done.created, done.existing, done.failure) == (ROWS, 0, None)
    assert _count(session, Sale) == ROWS and _count(session, Customer) == ROWS
    assert _count(session, FollowUp) >= ROWS  # every sale planned
    again = import_sales(session, _check(config), config=config, now=NOW, actor="t", chunk=999)
    assert (again.created, again.existing) == (0, ROWS)


def test_a_failing_chunk_keeps_the_chunks_before_it(
    engine: Engine, session: Session, config: Config
) -> None:
    install_defaults(session, NOW)
    session.commit()
    check = _check(config)

    def disk_full(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith("INSERT INTO sales") and "L-1234" in str(parameters):
            raise OperationalError(statement, parameters, Exception("could not extend file"))

    event.listen(engine, "before_cursor_execute", disk_full)
    try:
        done = import_sales(session, check, config=config, now=NOW, actor="t", chunk=500)
    finally:
        event.remove(engine, "before_cursor_execute", disk_full)
    # L-1234 is on line 1236, in the third chunk (lines 1002-1501): two chunks are stored.
    assert (done.created, done.stopped_at_line) == (1_000, 1_002)
    assert done.failure is not None and "could not extend file" in done.failure
    assert _count(session, Sale) == 1_000
    rest = import_sales(session, check, config=config, now=NOW, actor="t", chunk=500)
    assert (rest.created, rest.existing, rest.failure) == (ROWS - 1_000, 1_000, None)
    assert _count(session, Sale) == ROWS


def test_a_file_is_stored_while_it_is_checked(
    session: Session, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `postventa import-sales` and the import page run it: each chunk of good sales is
    stored as soon as it is checked, with the same outcome as checking first."""
    install_defaults(session, NOW)
    session.commit()
    events: list[str] = []
    add = Storing.add

    def validating(*args: Any, **kwargs: Any) -> Any:
        events.append("checked")
        return validate_sale(*args, **kwargs)

    def storing(self: Storing, part: Any) -> None:
        events.append(f"stored {len(part)}")
        add(self, part)

    monkeypatch.setattr(csv_import, "validate_sale", validating)
    monkeypatch.setattr(Storing, "add", storing)
    stored = Storing(session, config=config, now=NOW, actor="t", chunk=400)
    check = check_table(read_table(_file()), config, now=NOW, storing=stored)
    assert [event for event in events if event != "checked"] == ["stored 400"] * 5
    assert events.index("stored 400") == 400 < len(events) - 1  # the first 400, then the rest
    assert check.sales == _check(config).sales
    assert stored.result() == csv_import.Imported(ROWS, 0, 0)
    assert _count(session, Sale) == ROWS and _count(session, FollowUp) >= ROWS


def test_a_chunk_failing_while_the_file_is_checked_keeps_the_chunks_before_it(
    engine: Engine, session: Session, config: Config
) -> None:
    install_defaults(session, NOW)
    session.commit()

    def disk_full(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.startswith("INSERT INTO sales") and "L-1234" in str(parameters):
            raise OperationalError(statement, parameters, Exception("could not extend file"))

    stored = Storing(session, config=config, now=NOW, actor="t", chunk=500)
    event.listen(engine, "before_cursor_execute", disk_full)
    try:
        check = check_table(read_table(_file()), config, now=NOW, storing=stored)
    finally:
        event.remove(engine, "before_cursor_execute", disk_full)
    done = stored.result()
    assert (done.created, done.stopped_at_line) == (1_000, 1_002)
    assert done.failure is not None and "could not extend file" in done.failure
    assert len(check.sales) == ROWS and not check.problems  # the check went on to the end
    assert _count(session, Sale) == 1_000
    again = Storing(session, config=config, now=NOW, actor="t")
    check_table(read_table(_file()), config, now=NOW, storing=again)
    assert again.result() == csv_import.Imported(ROWS - 1_000, 1_000, 0)
    assert _count(session, Sale) == ROWS


def test_lists_are_split_below_every_database_parameter_limit() -> None:
    ids = list(range(66_000))
    parts = list(chunked(ids))
    assert max(len(part) for part in parts) <= 32_766  # SQLite's limit; PostgreSQL's is 65 535
    assert [value for part in parts for value in part] == ids


def test_a_chunk_says_which_of_its_sales_were_there_and_how_they_differ(
    session: Session, config: Config
) -> None:
    """Storing records a chunk's sales by id (no sale loaded that nothing compares): a sale
    already recorded, or given twice in one chunk, is counted as there and compared."""
    install_defaults(session, NOW)
    session.commit()
    first = Storing(session, config=config, now=NOW, actor="t")
    first.add([(2, sale_input("A-1"))])
    again = Storing(session, config=config, now=NOW, actor="t")
    again.add(
        [
            (2, sale_input("A-1", amount=Decimal("10.00"))),  # recorded before: compared
            (3, sale_input("A-2", phone="+51912345678")),
            (4, sale_input("A-2", phone="+51912345678", currency="USD")),  # twice in a chunk
        ]
    )
    done = again.result()
    assert (done.created, done.existing, done.failure) == (1, 2, None)
    assert [(p.line, p.field) for p in done.differing] == [(2, "amount"), (4, "currency")]
    assert _count(session, Sale) == 2
    assert (first.result().created, first.result().skipped_late) == (1, 0)


def test_the_follow_ups_skipped_are_counted_as_the_database_holds_them(
    session: Session, config: Config
) -> None:
    """The count told after an import, read from the planning where nothing else can have
    skipped a follow-up, and from the database where an erased customer's no did."""
    install_defaults(session, NOW)
    session.commit()

    def skipped(*external_ids: str) -> int:
        ids = session.scalars(select(Sale.id).where(Sale.external_id.in_(external_ids)))
        return skipped_as_late_by_id(session, list(ids))

    late = Storing(session, config=config, now=NOW, actor="t")
    late.add([(2, sale_input("O-1", sold_at=NOW - timedelta(days=40))), (3, sale_input("O-2"))])
    assert late.result().skipped_late == skipped("O-1", "O-2") > 0
    rosa = session.scalars(select(Customer)).one()
    erasure.erase(session, rosa, actor="t", reason="asked", now=NOW)
    session.commit()
    # Her number comes back with an order from before her erasure: nothing of it is sent.
    back = Storing(session, config=config, now=NOW, actor="t")
    back.add([(2, sale_input("O-3", sold_at=NOW - timedelta(days=1)))])
    every = select(func.count()).select_from(FollowUp).join(Sale).where(Sale.external_id == "O-3")
    assert back.result().skipped_late == skipped("O-3") == (session.scalar(every) or 0) > 0
