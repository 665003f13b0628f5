"""Sales from a CSV file (the till's export): checked row by row before anything is saved.

Every row is checked by the same rules as the JSON API (`scheduler.sending.intake`); a bad row is
reported with its line, field and reason and never stops the good ones. A file that cannot be
read as a table of sales at all is refused whole, saying why. Columns not ours are kept as the
sale's attributes. Spreadsheets in Spanish-speaking countries write `;` between fields and often
save in Windows-1252: both are read.
"""

from __future__ import annotations

import csv
import heapq
import io
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.db import chunked
from scheduler.models import Sale
from scheduler.sending import columns, shop_exports, shop_orders
from scheduler.sending.csv_cells import Cells, as_text, spreadsheet_safe
from scheduler.sending.intake import Problem, validate_sale
from scheduler.sending.sales import (
    PRODUCT_TERMS,
    SaleInput,
    differences,
    skipped_as_late_by_id,
    store_sales,
)
from scheduler.sending.spreadsheet_dates import FileOrder, file_order, is_spreadsheet_date, iso_text
from scheduler.typed_text import LINE_BREAKS, unfit_character

MAX_ROWS = 100_000
NOT_TEXT = (
    "this is not a CSV file but a spreadsheet or another binary file: save the sales as CSV "
    "(values separated by commas or semicolons) and import that"
)


class UnusableFile(ValueError):
    """The file is not a table of sales; the message says what to fix."""


class NeedsMapping(UnusableFile):
    """The header does not say where our fields are: the owner maps the columns once."""

    def __init__(self, message: str, table: Table, choices: list[str]) -> None:
        super().__init__(message)
        self.table = table
        self.choices = choices  # each column's field as its name suggests


@dataclass(frozen=True)
class RowProblem:
    line: int  # as a spreadsheet numbers it: the header is line 1
    field: str
    message: str


@dataclass(frozen=True)
class Table:
    """A CSV file read: its header (as written) and its non-blank rows with their lines."""

    header: list[str]
    rows: list[tuple[int, Cells]]


@dataclass
class ImportCheck:
    """What a file holds: the sales ready to record (with their lines) and every problem."""

    rows: int = 0
    sales: list[tuple[int, SaleInput]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    encoding: str = "utf-8"
    # How the file was read, for whoever imports it: its dates' order when the file showed it.
    date_order: FileOrder | None = None
    header: list[str] = field(default_factory=list)
    rejected: dict[int, Cells] = field(default_factory=dict)  # line -> the row as written
    source: str | None = None  # the shop whose orders export this is, if one
    # What rows said of each product, (SKU, field) -> (line, value): a later row saying
    # otherwise is refused.
    product_terms: dict[tuple[str, str], tuple[int, object]] = field(default_factory=dict)

    @property
    def rejected_lines(self) -> list[int]:
        return sorted({problem.line for problem in self.problems})


def decode(data: bytes) -> tuple[str, str]:
    """The text of an uploaded file and the encoding it was read with."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "windows-1252"


DELIMITERS = ",;\t"


def _delimiter(sample: str) -> str:
    """The delimiter of the header: of DELIMITERS, the one that splits the first line into the
    most column names we know, then into the most columns. Not csv.Sniffer, which guesses from
    the rows too: one short row, or a delimiter inside a quoted field with doubled quotes
    (Ana "la, jefa" as a spreadsheet writes it), made it misread a whole good file."""

    def fit(delimiter: str) -> tuple[int, int]:
        reader = csv.reader(io.StringIO(sample, newline=""), csv.excel, delimiter=delimiter)
        try:
            names = next(reader, [])
        except csv.Error:
            return -1, -1
        return sum(1 for name in columns.guess(names) if name), len(names)

    return max(DELIMITERS, key=fit)


def _shown(header: list[str]) -> str:
    """The header as read, cut short: a file of one long line is not worth repeating."""
    names = ", ".join(header)
    return names if len(names) <= 200 else names[:199] + "…"


def _binary(sample: str, header: list[str]) -> bool:
    """A spreadsheet (.xlsx), a PDF or a picture rather than text: its bytes would mean nothing
    on screen. A stray NUL in a row of a real CSV is that row's problem, not the file's."""
    if any(unfit_character(name) or "\ufffd" in name for name in header):
        return True
    odd = sum(1 for char in sample if char == "\ufffd" or unfit_character(char, LINE_BREAKS))
    return odd >= 8 and odd * 50 > len(sample)


def read_table(text: str) -> Table:
    """The header and rows of a CSV file; raises UnusableFile when it is not a table."""
    if not text.strip():
        raise UnusableFile("the file is empty")
    # Excel's dialect, as every spreadsheet writes: quotes inside a quoted field doubled.
    # Spaces after a delimiter are skipped, so that a hand-written `A-1, "Quispe, Rosa"` reads.
    delimiter = _delimiter(text[:4096])
    reader = csv.reader(
        io.StringIO(text, newline=""), csv.excel, delimiter=delimiter, skipinitialspace=True
    )
    try:
        header = [name.strip() for name in next(reader)]
    except csv.Error as error:
        raise UnusableFile(f"line 1: {error}") from None
    if _binary(text[:4096], header):
        raise UnusableFile(NOT_TEXT)
    keys = [columns.column_key(name) for name in header]
    counts = Counter(keys)  # not keys.count per column: a header may have thousands
    repeated = sorted({name for name, key in zip(header, keys, strict=True) if counts[key] > 1})
    if repeated:
        raise UnusableFile(f"line 1: the columns {', '.join(repeated)} appear twice")
    rows: list[tuple[int, Cells]] = []
    try:
        for values in reader:
            if not any(map(str.strip, values)):
                continue  # a blank line, often at the end of a spreadsheet's export
            if len(rows) == MAX_ROWS:
                raise UnusableFile(f"more than {MAX_ROWS} rows: split the file")
            rows.append((reader.line_num, tuple(values)))
    except csv.Error as error:
        raise UnusableFile(f"line {reader.line_num}: {error}") from None
    if not rows:
        raise UnusableFile("the file has a header but no sales")
    return Table(header, rows)


def check_sales_csv(
    text: str, config: Config, *, now: datetime, mapping: Mapping[str, str] | None = None
) -> ImportCheck:
    """Read and check every row (see `check_table`)."""
    return check_table(read_table(text), config, now=now, mapping=mapping)


def check_table(
    table: Table,
    config: Config,
    *,
    now: datetime,
    mapping: Mapping[str, str] | None = None,
    storing: Storing | None = None,
) -> ImportCheck:
    """Check every row of a table, its columns found by name or by the owner's `mapping`
    for this header; raises NeedsMapping when neither says where our fields are, before
    anything is stored. With `storing`, the good sales are stored chunk by chunk as they are
    checked: a large file is stored while the rest of it is still being checked on the other
    cores, instead of after."""
    shop = shop_exports.recognise(table.header)
    if shop is not None:
        return _check_export(table, shop, config, now, storing)
    found = columns.columns(table.header, mapping)
    if isinstance(found, list):
        guessed = columns.guess(table.header)
        lacking = columns.missing(guessed)
        message = (
            f"line 1: the header lacks {', '.join(lacking)} (it has: {_shown(table.header)})"
            if lacking and mapping is None
            else "line 1: " + "; ".join(found)
        )
        # Too few columns for any mapping to find our fields, or too many to show for one.
        if not len(columns.REQUIRED) + 1 <= len(table.header) <= columns.MAX_MAPPED_COLUMNS:
            raise UnusableFile(message)
        raise NeedsMapping(message, table, guessed)
    check = ImportCheck(header=table.header)
    dates = found.fields["sold_at"]
    check.date_order = file_order(
        (cells[dates] for _line, cells in table.rows if len(cells) > dates),
        config.business.country,
    )
    rows, problems = _by_width(table)
    items: list[Item] = []
    for line, cells in rows:
        raw: dict[str, Any] = {key: as_text(cells[index]) for key, index in found.fields.items()}
        raw["attributes"] = {name: as_text(cells[i]) for name, i in found.attributes.items()}
        items.append(((line,), raw))
    checked = _checked(items, check.date_order, config, now, storing=storing is not None)
    _settle(check, problems, checked, table, storing)
    return check


# The lines of an item, and their raw sale or problem. Tuples, as the rows: a large file's items
# are alive until its last one is checked, and each full garbage collection meanwhile scanned
# every one that was a list.
Item = tuple[tuple[int, ...], dict[str, Any] | RowProblem]
# The lines of an item checked: their sale, or what is wrong with it.
Checked = tuple[tuple[int, ...], SaleInput | list[Problem] | RowProblem]


def _by_width(table: Table) -> tuple[list[tuple[int, Cells]], list[Checked]]:
    """The rows with as many fields as the header, and the problem of each other row."""
    width = len(table.header)
    rows = [(line, cells) for line, cells in table.rows if len(cells) == width]
    problems: list[Checked] = [
        ((line,), RowProblem(line, "", f"has {len(cells)} fields where the header has {width}"))
        for line, cells in table.rows
        if len(cells) != width
    ]
    return rows, problems


def _check_export(
    table: Table, shop: str, config: Config, now: datetime, storing: Storing | None
) -> ImportCheck:
    """A shop's orders export: each order checked as its webhook's would be, reported on its
    first line; an order refused is rejected with all its lines."""
    check = ImportCheck(header=table.header, source=shop)
    rows, problems = _by_width(table)
    if len(rows) >= PARALLEL_FROM and not shop_exports.spreadsheet_dated(table.header, rows, shop):
        # No time needs the file's date order to be read: the orders are read, and checked,
        # part by part on the other cores too, instead of all here before the first is stored.
        check.date_order = _export_order(shop, [], config)
        header, narrow = shop_exports.narrowed(table.header, rows)
        parts = list(shop_exports.order_parts(header, narrow, shop, PARALLEL_CHUNK))
        arguments = (header, shop, check.date_order, config, now)
        checked = _in_parts(_check_orders, parts, *arguments, storing=storing is not None)
    else:
        # Each order becomes its raw sale as it is read: the orders themselves are not kept.
        items = [_export_item(item) for item in shop_exports.orders(table.header, rows, shop)]
        check.date_order = _export_order(
            shop, (raw["sold_at"] for _lines, raw in items if isinstance(raw, dict)), config
        )
        checked = _checked(items, check.date_order, config, now, storing=storing is not None)
    _settle(check, problems, checked, table, storing)
    return check


def _export_item(item: shop_exports.ExportedOrder) -> Item:
    if item.order is None:
        assert item.refused is not None
        return item.lines, RowProblem(item.lines[0], *item.refused)
    return item.lines, shop_orders.sale_fields(item.order)


def _export_order(shop: str, dates: Iterable[str], config: Config) -> FileOrder:
    """The order an export's dates are read in: what they show, else the shop's, else the
    country's."""
    found = file_order(dates, config.business.country)
    if found.evidence is None and shop_exports.DATE_ORDER[shop] is not None:
        return FileOrder(shop_exports.DATE_ORDER[shop])  # the shop's, not the country's
    return found


def _check_orders(
    rows: Sequence[tuple[int, Cells]],
    header: Sequence[str],
    shop: str,
    order: FileOrder,
    config: Config,
    now: datetime,
) -> list[Checked]:
    """The orders of an export's part, each checked as a whole file's are."""
    items = [_export_item(item) for item in shop_exports.orders(header, rows, shop)]
    return list(_checked(items, order, config, now, storing=False))


# Rows from which a file's sales are checked by several processes: below, starting them costs
# more than it saves. Checking a sale (its phone, its email) is what takes the time.
PARALLEL_FROM = 20_000
PARALLEL_CHUNK = 2_000
HERE_FIRST = 3  # parts worked on here first: at 2 000 rows, about the time a pool takes to start
P = TypeVar("P")
R = TypeVar("R")


def _in_parts(
    work: Callable[..., list[R]], parts: Sequence[P], *arguments: object, storing: bool
) -> Generator[R, None, None]:
    """`work(part, *arguments)` of each part, its results in order, as each part is ready: on
    the other cores too when there are several parts, while whoever reads them stores the
    first ones (`storing`: that process keeps a core to itself, it has the most to do)."""
    cores = min(os.cpu_count() or 1, 4)
    helpers = cores - storing
    if len(parts) < 2 or cores < 2 or helpers < 1:
        for part in parts:
            yield from work(part, *arguments)
        return
    # Spawned, not forked: the caller may run threads (the web app, the worker's scheduler).
    # A pool that cannot start or breaks (a calling script without a `__main__` guard, no
    # processes left) leaves the rest to this process: slower, never wrong.
    # The first parts are worked on here while the pool starts (a second or so: each process
    # imports the code), so that their sales can be stored meanwhile.
    # A reader that stops early (an error while storing, Ctrl-C) closes this generator: the
    # parts not started yet are cancelled instead of worked on for nobody.
    done = 0
    try:
        with ProcessPoolExecutor(helpers, mp_context=multiprocessing.get_context("spawn")) as pool:
            try:
                results = pool.map(work, parts[HERE_FIRST:], *(repeat(a) for a in arguments))
                for part in parts[:HERE_FIRST]:
                    yield from work(part, *arguments)
                    done += 1
                for result in results:
                    yield from result
                    done += 1
            except GeneratorExit:
                pool.shutdown(cancel_futures=True)
                raise
    except (BrokenProcessPool, OSError):
        for part in parts[done:]:  # still a part at a time
            yield from work(part, *arguments)


def _checked(
    items: list[Item], order: FileOrder | None, config: Config, now: datetime, *, storing: bool
) -> Generator[Checked, None, None]:
    """Each item (in file order) checked: its raw sale with a spreadsheet's date read in the
    file's `order`, by `validate_sale`."""
    dated = [_dated(item, lines[0], order) for lines, item in items]
    raws = [item for item in dated if isinstance(item, dict)]
    results: Generator[SaleInput | list[Problem], None, None] = (
        _in_parts(_validate_part, list(chunked(raws, PARALLEL_CHUNK)), config, now, storing=storing)
        if len(raws) >= PARALLEL_FROM
        else (validate_sale(raw, config, now=now) for raw in raws)  # each stored once checked
    )
    with closing(results):  # however this ends, a pool checking the rest stops
        for (lines, _raw), item in zip(items, dated, strict=True):
            yield lines, (item if isinstance(item, RowProblem) else next(results))


def _validate_part(
    raws: Sequence[dict[str, Any]], config: Config, now: datetime
) -> list[SaleInput | list[Problem]]:
    return [validate_sale(raw, config, now=now) for raw in raws]


def _settle(
    check: ImportCheck,
    problems: list[Checked],
    checked: Generator[Checked, None, None],
    table: Table,
    storing: Storing | None,
) -> None:
    """Add each item to `check` in file order (`problems` and `checked` each are in it): a good
    sale, or its problems and all its lines as rejected. Each chunk of good sales goes to
    `storing` as soon as it is complete."""
    cells_of = dict(table.rows)
    seen: dict[str, int] = {}
    stored = 0  # how many of check.sales went to `storing`
    # Closed however this ends, so that a pool checking the rest stops (see `_in_parts`).
    with closing(checked):
        for lines, result in heapq.merge(problems, checked, key=lambda item: item[0][0]):
            check.rows += 1
            line = lines[0]
            if isinstance(result, RowProblem):
                found = [result]
            elif isinstance(result, list):
                found = [
                    RowProblem(line, key.removeprefix("attributes."), text) for key, text in result
                ]
            else:
                found = _kept(check, result, line, seen)
            if found:
                check.problems += found
                check.rejected.update((each, cells_of[each]) for each in lines)
            elif storing is not None and len(check.sales) - stored == storing.chunk:
                storing.add(check.sales[stored:])
                stored = len(check.sales)
    if storing is not None and len(check.sales) > stored:
        storing.add(check.sales[stored:])


def _dated(
    item: dict[str, Any] | RowProblem, line: int, order: FileOrder | None
) -> dict[str, Any] | RowProblem:
    """The raw sale with a spreadsheet's date as ISO 8601, or why the date cannot be read."""
    if isinstance(item, RowProblem):
        return item
    sold_at = item.get("sold_at")
    if isinstance(sold_at, str) and is_spreadsheet_date(sold_at):
        try:
            return item | {"sold_at": iso_text(sold_at, order.order if order else None)}
        except ValueError as error:
            return RowProblem(line, "sold_at", str(error))
    return item


def _kept(check: ImportCheck, sale: SaleInput, line: int, seen: dict[str, int]) -> list[RowProblem]:
    """Add a valid sale to the check, unless an earlier line has its external id, or says
    otherwise of its product; then those problems."""
    first = seen.get(sale.external_id)
    if first is not None:
        return [RowProblem(line, "external_id", f"{sale.external_id!r} is already on line {first}")]
    sku = sale.product_sku or ""
    given = {
        key: value for key in PRODUCT_TERMS if sku and (value := getattr(sale, key)) is not None
    }
    differs = []
    for key, value in given.items():
        said_first, before = check.product_terms.get((sku, key), (line, value))
        if before != value:
            message = f"differs from line {said_first}, which gives the product {before!r}"
            differs.append(RowProblem(line, key, message))
    if differs:  # refused rather than one of two rows silently winning
        return differs
    for key, value in given.items():
        check.product_terms.setdefault((sku, key), (line, value))
    seen[sale.external_id] = line
    check.sales.append((line, sale))
    return []


def rejected_csv(check: ImportCheck, reason: Callable[[RowProblem], str], title: str) -> str:
    """The rejected rows as written, with why in a last column `title`: fixed in a
    spreadsheet, the file imports again. Cells are written `spreadsheet_safe`."""
    reasons: dict[int, list[str]] = {}
    for problem in check.problems:
        reasons.setdefault(problem.line, []).append(reason(problem))
    out = io.StringIO(newline="")
    writer = csv.writer(out, csv.excel)
    writer.writerow([spreadsheet_safe(name) for name in [*check.header, title]])
    for line in sorted(check.rejected):
        cells = [*check.rejected[line], "; ".join(reasons.get(line, []))]
        writer.writerow([spreadsheet_safe(cell) for cell in cells])
    return out.getvalue()


# Sales recorded per transaction. Each chunk is committed, so a failure (the database gone, a
# disk full) keeps the chunks before it, and memory holds one chunk's rows, not the file's.
IMPORT_CHUNK = 2_000


@dataclass(frozen=True)
class Imported:
    created: int  # new sales
    existing: int  # already known: re-importing a file changes nothing
    skipped_late: int  # follow-ups of the new sales whose time had passed beyond the grace
    # Rows whose external id was recorded with other content (`sales.differences`): kept as
    # recorded, and named, since another sale or a correction must not pass for a repeat.
    differing: list[RowProblem] = field(default_factory=list)
    # When a chunk failed: its first line (nothing from there on was stored) and why.
    stopped_at_line: int | None = None
    failure: str | None = None


class Storing:
    """Good sales recorded chunk by chunk, each committed: a failure (the database gone, a disk
    full) keeps the chunks before it and stores nothing after, and the result names the first
    line that was not stored; importing the file again stores the rest (sales already stored
    are recognised, never doubled). Memory holds one chunk's rows, not the file's."""

    def __init__(
        self,
        session: Session,
        *,
        config: Config,
        now: datetime,
        actor: str,
        chunk: int = IMPORT_CHUNK,
    ) -> None:
        self.session, self.config, self.now, self.actor = session, config, now, actor
        self.chunk = chunk
        self.created = self.existing = self.skipped = 0
        self.differing: list[RowProblem] = []
        self.stopped_at_line: int | None = None
        self.failure: str | None = None

    def add(self, part: Sequence[tuple[int, SaleInput]]) -> None:
        """Record these sales (lines and sales, in file order), unless an earlier chunk failed."""
        if self.failure is not None or not part:
            return
        session = self.session
        try:
            # The new sales' ids alone: loading each as an object cost a tenth of the import.
            recorded = store_sales(
                session,
                [sale for _line, sale in part],
                config=self.config,
                now=self.now,
                actor=self.actor,
            )
            late = recorded.skipped
            if late is None:
                late = skipped_as_late_by_id(session, list(recorded.created.values()))
            session.commit()
        except (SQLAlchemyError, LookupError) as error:
            session.rollback()
            self.stopped_at_line = part[0][0]
            self.failure = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            return
        fresh = set(recorded.created)
        for line, sale in part:
            if sale.external_id in fresh:  # created by this line
                fresh.discard(sale.external_id)
                continue
            row = recorded.existing.get(sale.external_id) or session.get(
                Sale, recorded.created[sale.external_id]
            )
            assert row is not None
            self.differing += [
                RowProblem(line, name, message) for name, message in differences(row, sale)
            ]
        self.created += len(recorded.created)
        self.existing += len(part) - len(recorded.created)
        self.skipped += late
        session.expunge_all()  # let the chunk's rows go

    def result(self) -> Imported:
        return Imported(
            self.created,
            self.existing,
            self.skipped,
            self.differing,
            self.stopped_at_line,
            self.failure,
        )


def import_sales(
    session: Session,
    check: ImportCheck,
    *,
    config: Config,
    now: datetime,
    actor: str,
    chunk: int = IMPORT_CHUNK,
) -> Imported:
    """Record the good rows of a file already checked, `chunk` of them per commit (see
    `Storing`)."""
    storing = Storing(session, config=config, now=now, actor=actor, chunk=chunk)
    for part in chunked(check.sales, chunk):
        storing.add(part)
    return storing.result()
