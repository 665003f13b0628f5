"""What the migrations' row triggers share, spelt out as SQL for both databases."""

from __future__ import annotations

from collections.abc import Sequence


def changed(columns: Sequence[str], *, postgresql: bool) -> str:
    """A row trigger's condition: one of these columns differs between OLD and NEW (nulls
    compared as values)."""
    if postgresql:
        return (
            f"({', '.join(f'OLD.{column}' for column in columns)}) "
            f"IS DISTINCT FROM ({', '.join(f'NEW.{column}' for column in columns)})"
        )
    return "(" + " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in columns) + ")"
