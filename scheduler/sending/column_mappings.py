"""The owner's column mappings, kept by header (`columns.signature`): mapped once, a file
with the same columns imports the next time without asking, from the page or the command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from scheduler import audit
from scheduler.db import insert_or_else
from scheduler.models import ColumnMapping
from scheduler.sending import columns


def saved_mapping(session: Session, header: Sequence[str]) -> dict[str, str] | None:
    row = session.get(ColumnMapping, columns.signature(header))
    return dict(row.choices) if row is not None else None


def save_mapping(
    session: Session, header: Sequence[str], choices: Sequence[str], *, now: datetime, actor: str
) -> list[str]:
    """Keep the choices for files with this header; the problems instead when they cannot
    read one (nothing is kept then). Choosing again replaces the earlier choice."""
    problems = columns.mapping_problems(header, choices)
    if problems:
        return problems
    mapping = {name.strip(): choice for name, choice in zip(header, choices, strict=True)}
    values = {"choices": mapping, "updated_at": now, "updated_by": actor}
    statement = insert_or_else(session, ColumnMapping).values(
        signature=columns.signature(header), **values
    )
    # An upsert: two owners mapping the same file at once both succeed, the later one kept.
    session.execute(statement.on_conflict_do_update(index_elements=["signature"], set_=values))
    audit.record(
        session,
        at=now,
        actor=actor,
        action="import.map_columns",
        entity_type="column_mapping",
        columns=mapping,
    )
    return []
