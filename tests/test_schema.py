"""Migrations: they build exactly the model's schema, and the app refuses a stale database."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from scheduler import schema
from scheduler.config import Config
from scheduler.db import make_engine
from scheduler.models import Base
from web import create_app


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_database_is_at_head_after_upgrade(engine: Engine) -> None:
    assert schema.current_revision(engine) == schema.head_revision()
    schema.require_current(engine)  # does not raise


def test_upgrade_is_idempotent(engine: Engine) -> None:
    schema.upgrade(engine)
    assert schema.current_revision(engine) == schema.head_revision()


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        ("0002", None),
        (None, "has no Postventa tables: run `postventa db upgrade`"),
        ("0001", "is at revision 0001 but this version needs 0002: run `postventa db upgrade`"),
        (
            "9999",
            "is at revision 9999, newer than this version of Postventa (which expects 0002): "
            "upgrade Postventa",
        ),
    ],
)
def test_schema_problem_says_what_to_do(current: str | None, expected: str | None) -> None:
    assert schema.schema_problem(current, "0002", {"0001", "0002"}) == expected


def test_app_refuses_an_empty_database(tmp_path: Path, config: Config) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(schema.SchemaError, match="run `postventa db upgrade`"):
        create_app(config.replace(database={"url": empty}))


def test_app_refuses_a_database_from_a_newer_version(engine: Engine, config: Config) -> None:
    head = schema.head_revision()
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    try:
        with pytest.raises(schema.SchemaError, match="newer than this version"):
            create_app(config)
    finally:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})


def test_a_fresh_database_migrates_from_nothing(tmp_path: Path) -> None:
    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert schema.current_revision(fresh) is None
    schema.upgrade(fresh)
    assert schema.current_revision(fresh) == schema.head_revision()
    with fresh.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    fresh.dispose()


def test_app_refuses_a_database_that_is_behind(tmp_path: Path, config: Config) -> None:
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    behind = make_engine(url)
    schema.upgrade(behind, "0001")
    behind.dispose()
    with pytest.raises(schema.SchemaError, match="is at revision 0001 but this version needs"):
        create_app(config.replace(database={"url": url}))


def test_a_sales_follow_ups_are_found_by_index_not_by_reading_the_table(engine: Engine) -> None:
    """The unique (sale, step) index is partial; a query by sale alone (a sale's page, a
    replan) has its own index, or it reads every follow-up ever planned."""
    query = "SELECT id FROM follow_ups WHERE sale_id = 42"
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            plan = " ".join(
                str(row) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {query}"))
            )
        else:  # an empty table is read whole whatever its indexes: ask for the index's cost
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(row[0] for row in connection.execute(text(f"EXPLAIN {query}")))
    assert "ix_follow_ups_sale_id" in plan, plan
