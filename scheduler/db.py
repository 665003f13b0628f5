"""Engines and sessions for the two supported databases: SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

# Values per IN (...) list or per multi-row statement: PostgreSQL refuses a statement with more
# than 65 535 parameters ("number of parameters must be between 0 and 65535"), SQLite's limit is
# 32 766; an import of 66 000 sales failed whole on one unsplit list of ids.
IN_CHUNK = 500


def chunked(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """`values` in consecutive slices of at most `size`: every statement that takes a list
    of unbounded length goes through here."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def make_engine(url: str, **options: Any) -> Engine:
    """An engine tuned for its backend.

    SQLite: WAL so the web app can read while the worker writes, foreign keys on, a busy timeout
    instead of instant "database is locked", and real BEGIN statements (pysqlite's own handling
    defers BEGIN, which breaks atomic claims). Writers' sessions begin IMMEDIATE: see
    `make_session_factory`.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **options)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30}, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Up to 32 MiB a connection (filled only as a database grows): big indexes stay hot.
        cursor.execute("PRAGMA cache_size=-32768")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


def make_session_factory(engine: Engine, *, writer: bool = False) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (the web layer renders them).

    `writer`: for transactions that read and then write under contention (the worker). On SQLite
    they begin IMMEDIATE, taking the write lock up front: a deferred transaction that reads, then
    writes after another connection committed fails at once with "database is locked" whatever
    the busy timeout. Readers are never blocked by it in WAL mode; PostgreSQL ignores the option.
    """
    if writer:
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    return sessionmaker(engine, expire_on_commit=False)


def begin_writing(session: Session) -> None:
    """Start the session's next transaction as a writer's (BEGIN IMMEDIATE on SQLite, see
    `make_session_factory`), for code that reads and then writes under contention, such as
    parallel requests recording sales. Does nothing inside a transaction already begun."""
    if not session.in_transaction() and session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
