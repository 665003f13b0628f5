"""Sales from a CSV file (the till's export): checked row by row before anything is saved.

Every row is checked by the same rules as the JSON API (`scheduler.sending.intake`); a bad row is
reported with its line, field and reason and never stops the good ones. A file that cannot be
read as a table of sales at all is refused whole, saying why. Columns not ours are kept as the
sale's attributes. Spreadsheets in Spanish-speaking countries write `;` between fields and often
save in Windows-1252: both are read.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from scheduler.config import Config
from scheduler.db import chunked
from scheduler.sending.intake import FIELDS, validate_sale
from scheduler.sending.sales import PRODUCT_TERMS, SaleInput, record_sales, skipped_as_late
from scheduler.typed_text import LINE_BREAKS, unfit_character

REQUIRED_COLUMNS = ("external_id", "sold_at", "customer_name")
MAX_ROWS = 100_000
MAX_ATTRIBUTE_COLUMNS = 30
NOT_TEXT = (
    "this is not a CSV file but a spreadsheet or another binary file: save the sales as CSV "
    "(values separated by commas or semicolons) and import that"
)


class UnusableFile(ValueError):
    """The file is not a table of sales; the message says what to fix."""


@dataclass(frozen=True)
class RowProblem:
    line: int  # as a spreadsheet numbers it: the header is line 1
    field: str
    message: str


@dataclass
class ImportCheck:
    """What a file holds: the sales ready to record (with their lines) and every problem."""

    rows: int = 0
    sales: list[tuple[int, SaleInput]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    encoding: str = "utf-8"

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
    most of our column names, then into the most columns. Not csv.Sniffer, which guesses from
    the rows too: one short row, or a delimiter inside a quoted field with doubled quotes
    (Ana "la, jefa" as a spreadsheet writes it), made it misread a whole good file."""

    def fit(delimiter: str) -> tuple[int, int]:
        reader = csv.reader(io.StringIO(sample, newline=""), csv.excel, delimiter=delimiter)
        try:
            names = [name.strip().lower() for name in next(reader, [])]
        except csv.Error:
            return -1, -1
        return sum(name in FIELDS for name in names), len(names)

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


def check_sales_csv(text: str, config: Config, *, now: datetime) -> ImportCheck:
    """Read and check every row; raises UnusableFile when there is no table of sales."""
    if not text.strip():
        raise UnusableFile("the file is empty")
    # Excel's dialect, as every spreadsheet writes: quotes inside a quoted field doubled.
    # Spaces after a delimiter are skipped, so that a hand-written `A-1, "Quispe, Rosa"` reads.
    delimiter = _delimiter(text[:4096])
    reader = csv.reader(
        io.StringIO(text, newline=""), csv.excel, delimiter=delimiter, skipinitialspace=True
    )
    try:
        header = [name.strip().lower() for name in next(reader)]
    except csv.Error as error:
        raise UnusableFile(f"line 1: {error}") from None
    if _binary(text[:4096], header):
        raise UnusableFile(NOT_TEXT)
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if "phone" not in header and "email" not in header:
        missing.append("phone or email")
    if missing:
        raise UnusableFile(
            f"line 1: the header lacks {', '.join(missing)} (it has: {_shown(header)})"
        )
    repeated = sorted({name for name in header if header.count(name) > 1 and name})
    if repeated:
        raise UnusableFile(f"line 1: the columns {', '.join(repeated)} appear twice")
    extra = [name for name in header if name not in FIELDS]
    if len(extra) > MAX_ATTRIBUTE_COLUMNS:
        raise UnusableFile(
            f"line 1: {len(extra)} unknown columns (at most "
            f"{MAX_ATTRIBUTE_COLUMNS} are kept as attributes)"
        )
    check = ImportCheck()
    seen: dict[str, int] = {}
    said: dict[tuple[str, str], tuple[int, object]] = {}
    try:
        for values in reader:
            line = reader.line_num
            if not any(value.strip() for value in values):
                continue  # a blank line, often at the end of a spreadsheet's export
            check.rows += 1
            if check.rows > MAX_ROWS:
                raise UnusableFile(f"more than {MAX_ROWS} rows: split the file")
            _check_row(check, header, values, line, (seen, said), config, now)
    except csv.Error as error:
        raise UnusableFile(f"line {reader.line_num}: {error}") from None
    if not check.rows:
        raise UnusableFile("the file has a header but no sales")
    return check


def _check_row(
    check: ImportCheck,
    header: list[str],
    values: list[str],
    line: int,
    earlier: tuple[dict[str, int], dict[tuple[str, str], tuple[int, object]]],
    config: Config,
    now: datetime,
) -> None:
    """Check one row; `earlier` holds the lines of the external ids already read and what the
    rows before said of each product (SKU, field), so that a row that says otherwise is
    refused rather than one of them silently winning."""
    seen, said = earlier
    if len(values) != len(header):
        message = f"has {len(values)} fields where the header has {len(header)}"
        check.problems.append(RowProblem(line, "", message))
        return
    row = dict(zip(header, values, strict=True))
    raw: dict[str, object] = {key: row.get(key, "") for key in FIELDS}
    raw["attributes"] = {key: value for key, value in row.items() if key not in FIELDS and key}
    result = validate_sale(raw, config, now=now)
    if isinstance(result, list):
        check.problems += [
            RowProblem(line, name.removeprefix("attributes."), message) for name, message in result
        ]
        return
    first = seen.get(result.external_id)
    if first is not None:
        message = f"{result.external_id!r} is already on line {first}"
        check.problems.append(RowProblem(line, "external_id", message))
        return
    sku = result.product_sku
    given = {
        key: value for key in PRODUCT_TERMS if sku and (value := getattr(result, key)) is not None
    }
    differs = []
    for key, value in given.items():
        first, before = said.get((sku or "", key), (line, value))
        if before != value:
            message = f"differs from line {first}, which gives the product {before!r}"
            differs.append(RowProblem(line, key, message))
    if differs:
        check.problems += differs
        return
    for key, value in given.items():
        said.setdefault((sku or "", key), (line, value))
    seen[result.external_id] = line
    check.sales.append((line, result))


# Sales recorded per transaction. Each chunk is committed, so a failure (the database gone, a
# disk full) keeps the chunks before it, and memory holds one chunk's rows, not the file's.
IMPORT_CHUNK = 2_000


@dataclass(frozen=True)
class Imported:
    created: int  # new sales
    existing: int  # already known: re-importing a file changes nothing
    skipped_late: int  # follow-ups of the new sales whose time had passed beyond the grace
    # When a chunk failed: its first line (nothing from there on was stored) and why.
    stopped_at_line: int | None = None
    failure: str | None = None


def import_sales(
    session: Session,
    check: ImportCheck,
    *,
    config: Config,
    now: datetime,
    actor: str,
    chunk: int = IMPORT_CHUNK,
) -> Imported:
    """Record the good rows, committing every `chunk` of them. If a chunk fails, the chunks
    before it stay stored and the result names the first line that was not; importing the
    file again stores the rest (sales already stored are recognised, never doubled)."""
    created = existing = skipped = 0
    for part in chunked(check.sales, chunk):
        try:
            results = record_sales(
                session, [sale for _line, sale in part], config=config, now=now, actor=actor
            )
            new = [sale for sale, was_created in results if was_created]
            late = skipped_as_late(session, new)
            session.commit()
        except (SQLAlchemyError, LookupError) as error:
            session.rollback()
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            return Imported(created, existing, skipped, part[0][0], reason)
        created, existing = created + len(new), existing + len(results) - len(new)
        skipped += late
        session.expunge_all()  # let the chunk's rows go
    return Imported(created, existing, skipped)
