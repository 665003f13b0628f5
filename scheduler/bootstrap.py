"""`postventa init`: bring a database to a usable state, as often as it is run."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from scheduler import schema
from scheduler.config import Config
from scheduler.db import make_session_factory
from scheduler.defaults import install_defaults
from scheduler.demo import add_demo_data


def initialise(engine: Engine, config: Config, *, demo: bool, now: datetime) -> list[str]:
    """Migrate to head, install the default cadence and templates if missing, and add demo data
    if asked; returns lines that say what was done. MissingTemplates: the install ships none."""
    before = schema.current_revision(engine)
    schema.upgrade(engine)
    after = schema.current_revision(engine)
    report = [
        f"database migrated from {before or 'empty'} to {after}"
        if before != after
        else f"database already at {after}"
    ]
    with make_session_factory(engine).begin() as session:
        report += install_defaults(session, now)
        if demo:
            added = add_demo_data(session, config, now)
            report.append(
                f"demo data: {added} sales added" if added else "demo data already present"
            )
    return report
