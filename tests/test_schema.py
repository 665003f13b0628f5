"""Migrations: they build exactly the model's schema, and the app refuses a stale database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session

from scheduler import schema
from scheduler.config import Config
from scheduler.db import make_engine, make_session_factory, refresh_statistics, side_by_side
from scheduler.models import Base, Cadence, CadenceStep, Customer, FollowUp, Sale
from scheduler.sending import sent_texts
from web import create_app


def test_migrations_match_the_models(engine: Engine) -> None:
    """Everything but what PostgreSQL alone has: the trigram indexes, which a test below
    checks, and the copy of what went out (tests/sending/test_sent_texts.py)."""

    def shared(_thing: object, name: str | None, kind: str, *_rest: object) -> bool:
        return not (
            (kind == "index" and name in schema.POSTGRESQL_ONLY)
            or (kind == "table" and name in schema.POSTGRESQL_ONLY_TABLES)
        )

    with engine.connect() as connection:
        opts = {"compare_type": True, "include_object": shared}
        context = MigrationContext.configure(connection, opts=opts)
        assert compare_metadata(context, Base.metadata) == []


def _predicate(sql: str) -> str:
    """An index's condition as both databases write it back, without PostgreSQL's casts and
    brackets: comparable to the model's."""
    bare = re.sub(r"::[a-z ]+?(?=[) ]|$)", "", sql.replace("(", "").replace(")", ""))
    return " ".join(bare.split()).lower()


def test_partial_indexes_hold_the_rows_the_models_say(engine: Engine) -> None:
    """What the comparison above leaves out: each index's condition (a case's messages alone,
    the outbound ones alone, ...), as the migrations made it."""
    if engine.dialect.name == "sqlite":
        made = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'"
    else:
        made = (
            "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indpred IS NOT NULL"
        )
    with engine.connect() as connection:
        found = {
            name: _predicate(sql.split(" WHERE ", 1)[-1])
            for name, sql in connection.execute(text(made))
            if name not in schema.POSTGRESQL_ONLY
        }
    wanted = {
        str(index.name): _predicate(str(where))
        for table in Base.metadata.tables.values()
        for index in table.indexes
        if (where := index.dialect_options[engine.dialect.name]["where"]) is not None
    }
    assert found == wanted
    assert wanted["ix_messages_case_id"] == "case_id is not null"


def test_postgresql_searches_words_through_trigram_indexes(pg_engine: Engine) -> None:
    """The words of a search that no text holds are found absent from the index, not by
    reading every text that went out: the plan says which index answers."""
    with pg_engine.connect() as connection:
        names = set(
            connection.scalars(
                text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_%words'")
            )
        )
        assert names == schema.POSTGRESQL_ONLY
        connection.execute(
            text(
                "INSERT INTO messages (direction, channel, from_address, to_address, body, "
                "status, created_at, attempts) SELECT 'outbound', 'sms', '+15005550006', "
                "'+51987654321', 'Hola, gracias por tu compra ' || g, 'delivered', now(), 1 "
                "FROM generate_series(1, 20000) g"
            )
        )
        with Session(bind=connection) as session:
            assert [sent_texts.copy_waiting(session, 8_000) for _ in range(3)] == [8_000] * 2 + [
                4_000
            ]
        connection.execute(text("ANALYZE outbound_texts"))
        # Which index can answer, not the planner's pricing (on 20 000 rows a scan may win).
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            connection.scalars(
                text(
                    "EXPLAIN SELECT message_id FROM outbound_texts "
                    "WHERE body ILIKE '%' || 'zzzz' || '%'"
                )
            )
        )
        connection.rollback()
        assert "ix_outbound_texts_words" in plan


def test_the_scripts_names_say_what_alembic_reads() -> None:
    """`schema.revisions` reads the scripts' names (the start-up check stays light): each
    script's revision is its number, each revises the one before, and the newest is the head."""
    scripts = ScriptDirectory.from_config(schema.alembic_config())
    chain = list(reversed(list(scripts.walk_revisions())))
    assert [script.revision for script in chain] == sorted(schema.revisions()[1])
    assert [script.down_revision for script in chain] == [None, *sorted(schema.revisions()[1])[:-1]]
    assert scripts.get_current_head() == schema.head_revision()
    for script in chain:
        assert Path(script.path).name.startswith(f"{script.revision}_"), script.path


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


@pytest.mark.parametrize(
    ("query", "index"),
    [
        # The unique (sale, step) index is partial; a query by sale alone (a sale's page, a
        # replan) has its own index, or it reads every follow-up ever planned.
        ("SELECT id FROM follow_ups WHERE sale_id = 42", "ix_follow_ups_sale_id"),
        # The case index holds only messages in a case (migration 0040): a case's
        # conversation, asked by its case or joined to it, is still read from it.
        ("SELECT id FROM messages WHERE case_id = 42", "ix_messages_case_id"),
        (
            "SELECT messages.id FROM cases JOIN messages ON messages.case_id = cases.id "
            "WHERE cases.customer_id = 42",
            "ix_messages_case_id",
        ),
    ],
)
def test_rows_asked_by_their_parent_are_found_by_index_not_by_reading_the_table(
    engine: Engine, query: str, index: str
) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            plan = " ".join(
                str(row) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {query}"))
            )
        else:  # an empty table is read whole whatever its indexes: ask for the index's cost
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(row[0] for row in connection.execute(text(f"EXPLAIN {query}")))
    assert index in plan, plan


def test_the_figures_of_a_period_are_read_by_sending_time_once_statistics_are_kept(
    engine: Engine,
) -> None:
    """A period's sent follow-ups are found by their sending time, not by their status (which
    would read every follow-up ever sent): SQLite needs the statistics the worker keeps. A year
    of follow-ups, nearly all sent, as a shop's table holds them."""
    year = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=4 * n) for n in range(2_000)]
    with engine.begin() as connection:
        customer = connection.execute(
            insert(Customer).values(name="Ana", created_at=year[0]).returning(Customer.id)
        ).scalar_one()
        cadence = connection.execute(
            insert(Cadence)
            .values(name="Año", created_at=year[0], updated_at=year[0])
            .returning(Cadence.id)
        ).scalar_one()
        step = connection.execute(
            insert(CadenceStep)
            .values(
                cadence_id=cadence,
                key="d1",
                offset_minutes=0,
                channel="sms",
                template_name="thanks",
            )
            .returning(CadenceStep.id)
        ).scalar_one()
        sales = connection.execute(
            insert(Sale).returning(Sale.id),
            [
                {"external_id": f"S{n}", "customer_id": customer, "sold_at": at, "created_at": at}
                for n, at in enumerate(year)
            ],
        ).scalars()
        connection.execute(
            insert(FollowUp),
            [
                {
                    "sale_id": sale,
                    "step_id": step,
                    "customer_id": customer,
                    "channel": "sms",
                    "due_at": at,
                    "status": "delivered" if n % 50 else "scheduled",
                    "sent_at": at if n % 50 else None,
                    "created_at": at,
                    "updated_at": at,
                }
                for n, (sale, at) in enumerate(zip(sales, year, strict=True))
            ],
        )
    refresh_statistics(engine)
    engine = make_engine(engine.url.render_as_string(hide_password=False))  # a connection
    # opened after the statistics reads them (as every connection does within the hour)
    query = (
        "SELECT step_id, count(*) FROM follow_ups WHERE status IN ('sent', 'delivered') "
        "AND sent_at >= '2026-11-01' AND sent_at < '2026-12-01' GROUP BY step_id"
    )
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            stats = connection.exec_driver_sql("SELECT count(*) FROM sqlite_stat1").scalar()
            assert stats, "ANALYZE kept no statistics"
            plan = " ".join(
                str(row) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {query}"))
            )
        else:
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(row[0] for row in connection.execute(text(f"EXPLAIN {query}")))
    engine.dispose()
    assert "ix_follow_ups_sent_figures" in plan, plan


def test_postgresql_connections_compile_no_queries(postgres_url: str) -> None:
    """JIT compiling cost more than the dashboard's queries it compiled: off on every
    connection (set after connecting: a pooler may refuse a startup option)."""
    engine = make_engine(postgres_url, pool_size=1, max_overflow=1)
    try:
        with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):
                assert connection.exec_driver_sql("SHOW jit").scalar() == "off"
    finally:
        engine.dispose()


def test_the_dashboards_readers_keep_to_one_core_and_price_lookups_as_reads_from_memory(
    postgres_url: str,
) -> None:
    """For their own transaction only: the worker's queries keep the server's settings."""
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)
    settings = "SELECT current_setting('max_parallel_workers_per_gather'), "
    settings += "current_setting('random_page_cost')"
    try:
        with make_session_factory(engine)() as session:
            defaults = session.execute(text(settings)).one()
            session.commit()
            side_by_side(session)
            assert tuple(session.execute(text(settings)).one()) == ("0", "1.1")
            session.commit()
            assert session.execute(text(settings)).one() == defaults
    finally:
        engine.dispose()
