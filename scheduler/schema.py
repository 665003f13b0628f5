"""Schema migrations (Alembic) and the start-up check that the database is current."""

from __future__ import annotations

import functools
from collections.abc import Set
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

if TYPE_CHECKING:  # Alembic is loaded to migrate, not to check (every command checks)
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"
VERSIONS = MIGRATIONS / "versions"  # one script a revision, named NNNN_what_it_does.py
# Indexes migrations 0029 and 0041 make on PostgreSQL alone (trigram indexes for searches by
# words), and the tables of 0041 (what went out, copied to be searched): not in the models,
# which SQLite shares.
POSTGRESQL_ONLY = frozenset(
    {"ix_messages_case_words", "ix_outbound_texts_words", "ix_customers_words"}
)
POSTGRESQL_ONLY_TABLES = frozenset({"outbound_texts", "outbound_texts_waiting"})


class SchemaError(RuntimeError):
    """The database schema does not match this version of Postventa."""


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    """Alembic's configuration, built in code: no alembic.ini to lose or misplace."""
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        config.set_main_option(
            "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
        )
    return config


@functools.cache
def revisions() -> tuple[str, frozenset[str]]:
    """The newest revision and every one this code knows, from the scripts' names (each is its
    revision's number, and each revises the one before: tests/test_schema.py checks that
    Alembic reads the same). Every command and the web app check the database at start; this
    way the check loads neither Alembic nor thirty scripts."""
    known = frozenset(path.name.split("_", 1)[0] for path in VERSIONS.glob("[0-9]*_*.py"))
    assert known, "no migrations found"
    return max(known), known


def head_revision() -> str:
    return revisions()[0]


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (Alembic's `alembic_version`); None: no tables yet."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        found: str | None = connection.scalar(text("SELECT version_num FROM alembic_version"))
        return found


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to `revision` (the newest by default), in one transaction.
    Refused (SchemaError) for a database a newer Postventa has migrated: this code cannot
    know what its migrations did, nor undo them."""
    current = current_revision(engine)
    head, known = revisions()
    if current is not None and current not in known:
        raise SchemaError(
            f"database {engine.url.render_as_string(hide_password=True)} "
            f"{schema_problem(current, head, known)}; `db upgrade` changes nothing"
        )
    from alembic import command

    config = alembic_config(engine)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _sqlite_foreign_keys(connection, on=False)
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if sqlite:
                    _check_foreign_keys(connection)
        finally:
            if sqlite:
                _sqlite_foreign_keys(connection, on=True)


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> None:
    """SQLite rebuilds a table to alter it (a copy, then DROP TABLE of the original), and with
    foreign keys enforced that DROP first deletes every row, cascading into the tables that
    point at it: a cadence's rebuild would empty its steps and their follow-ups. Enforcement
    is switched off for the migration, as SQLite's documentation prescribes, and the result
    checked before it commits. The pragma is ignored inside a transaction: it is set on the
    driver's connection, between transactions."""
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({str(row[0]) for row in broken})
        raise SchemaError(
            f"the migration left {len(broken)} rows pointing at rows that do not exist "
            f"(in {', '.join(tables)}): nothing was changed"
        )


def schema_problem(current: str | None, head: str, known: Set[str]) -> str | None:
    """What is wrong with a database at revision `current` for code that expects `head`."""
    if current == head:
        return None
    if current is None:
        return "has no Postventa tables: run `postventa db upgrade`"
    if current not in known:
        return (
            f"is at revision {current}, newer than this version of Postventa "
            f"(which expects {head}): upgrade Postventa"
        )
    return f"is at revision {current} but this version needs {head}: run `postventa db upgrade`"


def require_current(engine: Engine) -> None:
    """Refuse to run against a database that is behind (or ahead of) this code."""
    head, known = revisions()
    problem = schema_problem(current_revision(engine), head, known)
    if problem:
        raise SchemaError(f"database {engine.url.render_as_string(hide_password=True)} {problem}")
