"""Cells of a CSV that people open in a spreadsheet: one that starts like a formula (`=`, `+`,
`-`, `@`) would be run when the file is opened (CSV injection). What we write back is guarded
with a leading `'`, and the guard is taken off again when the file comes back.
"""

from __future__ import annotations

FORMULA_START = tuple("=+-@\t\r")
# A row's cells as read. A tuple of strings, which the garbage collector stops tracking once it
# has seen it: a file's rows as lists were scanned again, cell by cell, in every full
# collection while the file was checked and stored.
Cells = tuple[str, ...]


def as_text(cell: str) -> str:
    """A cell as written before `spreadsheet_safe` guarded it: our own rejected rows, fixed
    and imported again, read as they were. Rows are kept as written (rejected ones go back
    so); a cell is read through this when it is used."""
    return cell[1:] if cell[:1] == "'" and cell[1:].startswith(FORMULA_START) else cell


def spreadsheet_safe(cell: str) -> str:
    """A cell that a spreadsheet shows as text instead of running it as a formula."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell
