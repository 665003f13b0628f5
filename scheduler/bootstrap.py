"""`postventa init`: bring a database to a usable state, as often as it is run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from scheduler import schema
from scheduler.db import make_session_factory
from scheduler.demo import add_demo_data


def initialise(engine: Engine, *, demo: bool, now: datetime) -> list[str]:
    """Migrate to head and add demo data if asked; returns lines that say what was done."""
    before = schema.current_revision(engine)
    schema.upgrade(engine)
    after = schema.current_revision(engine)
    report = [
        f"database migrated from {before or 'empty'} to {after}"
        if before != after
        else f"database already at {after}"
    ]
    if demo:
        with make_session_factory(engine).begin() as session:
            added = add_demo_data(session, now)
        report.append(f"demo data: {added} sales added" if added else "demo data already present")
    return report
