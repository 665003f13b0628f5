"""Engines and sessions for the two supported databases: SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


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
