"""Engines and sessions for the two supported databases: SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from copy import copy
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple

from sqlalchemy import (
    ARRAY,
    Boolean,
    ColumnElement,
    Engine,
    Row,
    Select,
    String,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    or_,
    text,
)
from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute, Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FromClause
from sqlalchemy.sql.visitors import InternalTraversal

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Values per IN (...) list or per multi-row statement: PostgreSQL refuses a statement with more
# than 65 535 parameters ("number of parameters must be between 0 and 65535"), SQLite's limit is
# 32 766; an import of 66 000 sales failed whole on one unsplit list of ids.
IN_CHUNK = 500
STATISTICS_SECONDS = 3600  # how often the worker renews SQLite's statistics


class Among(ColumnElement[bool]):
    """`column IN values`, as each database takes it best: on PostgreSQL, `= ANY` of one array
    parameter, the same short text whatever the count, which psycopg parses once and the
    server prepares once; a batch's IN list of 1 000 ids was rendered by SQLAlchemy, parsed by
    psycopg and planned by the server anew at each run. SQLite has no arrays: IN.

    `values` may also be a query of one column: PostgreSQL then takes `= ANY (ARRAY(query))`,
    the query run once and its values given where the table is read (looked up in its index,
    or kept while a small table is read once); as a join (or IN), a claim's thousand ids were
    planned as a hash of the whole table, built at each claim."""

    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a condition itself, not a column to compare with true
    _traverse_internals = [
        ("listed", InternalTraversal.dp_clauseelement),
        ("arrayed", InternalTraversal.dp_clauseelement),
    ]

    def __init__(
        self,
        column: ColumnElement[Any] | QueryableAttribute[Any],
        values: Iterable[Any] | Select[tuple[Any]],
    ) -> None:
        if isinstance(values, Select):
            self.listed = column.in_(values)
            self.arrayed = column == any_(func.array(values.scalar_subquery()))
            return
        values = list(values)
        self.listed = column.in_(values)
        element = column.type
        if isinstance(element, String) and element.length is not None:
            # Cast to VARCHAR(n)[], a longer text would be cut to n and match a shorter one.
            element = copy(element)
            element.length = None
        self.arrayed = column == any_(bindparam(None, values, type_=ARRAY(element)))

    @property
    def _from_objects(self) -> list[FromClause]:
        return self.listed._from_objects  # the column's table, as IN's


@compiles(Among)
def _in_list(element: Among, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.listed, **kw)


@compiles(Among, "postgresql")
def _in_array(element: Among, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.arrayed, **kw)


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

    PostgreSQL: no JIT compilation. Our queries are short, but a year of figures is estimated
    costly enough to trigger it, and compiling took longer than running (370 of 480 ms for a
    dashboard's funnel). And times in UTC, whatever the server's zone: psycopg then gives
    them in Python's own UTC, which the models keep as they come; in any other zone, even
    "Etc/UTC", each was converted on reading (a quarter's cases on the dashboard: 69 000
    times, 30 ms).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        if "connect_timeout" not in parsed.query:  # libpq waits minutes on a silent host
            options.setdefault("connect_args", {}).setdefault("connect_timeout", 10)
        engine = create_engine(url, pool_pre_ping=True, **options)
        if parsed.get_backend_name() == "postgresql":
            event.listen(engine, "connect", _session_settings)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # A connection reads the tables' statistics when it opens (ANALYZE in another does not
    # reach it): renewed hourly, as the worker renews the statistics.
    options.setdefault("pool_recycle", STATISTICS_SECONDS)
    engine = create_engine(url, connect_args={"timeout": 30}, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # A row an INSERT OR REPLACE takes the place of is deleted with its delete triggers
        # (the follow-ups' tallies, migration 0022), not silently.
        cursor.execute("PRAGMA recursive_triggers=ON")
        # Up to 32 MiB a connection (filled only as a database grows): big indexes stay hot.
        cursor.execute("PRAGMA cache_size=-32768")
        cursor.close()
        # SQLite's own lower() knows ASCII alone: a search for "peña" missed "PEÑA", which
        # PostgreSQL finds. No index is built on lower(), so none is read differently.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


def _lower(text: str | None) -> str | None:
    return text.lower() if isinstance(text, str) else text


def _session_settings(dbapi_connection: Any, _record: Any) -> None:
    """Set on each new connection, not as a startup option: poolers such as PgBouncer refuse
    connections that send one.

    Lists go to the server as binary arrays: psycopg writes a text array element by element
    in Python, quoting each string through regular expressions, which took longer than the
    server took to insert a batch's messages from them (1 000 rows of 6 columns: 10 ms as
    text, 2 ms as binary)."""
    from psycopg.types.array import ListBinaryDumper  # with the driver: SQLite never loads it

    dbapi_connection.adapters.register_dumper(list, ListBinaryDumper)
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET jit = off")
        cursor.execute("SET timezone = 'UTC'")
    dbapi_connection.autocommit = autocommit


class DatabaseUnreachable(RuntimeError):
    """The database cannot be reached or opened; the message is one line saying what to check."""


def open_engine(url: str) -> Engine:
    """An engine whose database answered once: a stopped server or a wrong URL is one clear
    line at start-up (DatabaseUnreachable), not a traceback at the first query."""
    try:
        engine = make_engine(url)
    except OSError as error:  # the SQLite file's folder cannot be made
        raise DatabaseUnreachable(unreachable(make_url(url), error)) from None
    try:
        with engine.connect():
            pass
    except DBAPIError as error:
        engine.dispose()
        raise DatabaseUnreachable(unreachable(engine.url, error.orig or error)) from None
    return engine


def unreachable(url: URL, error: BaseException) -> str:
    """Why the database at `url` could not be reached, and what to check, in one line."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if url.get_backend_name() == "sqlite":
        return (
            f"cannot open the SQLite database {url.database} ({first}): does its folder exist, "
            "and may this user write there? Check database.url"
        )
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    said = first.lower()
    known = (reason for words, reason in _REASONS if any(word in said for word in words))
    reason = next(known, first.rpartition("failed: ")[2].removeprefix("FATAL:").strip() or first)
    if "does not exist" in said or "authentication" in said or "password" in said:
        hint = "check the database name, user and password in database.url"
    else:
        hint = "is PostgreSQL running, and is database.url right?"
    return f"cannot reach the database at {where} ({reason}): {hint}"


_REASONS = (
    (("connection refused",), "connection refused"),
    (("timeout expired", "timed out"), "no answer in time"),
    (("translate host name", "name or service not known", "name resolution"), "unknown host"),
)


# The largest id a row can have: ids are INTEGER columns, 32 bits in PostgreSQL. A larger
# number from a URL or a form matches no row, but compared with an id it fails the statement.
MAX_ID = 2**31 - 1


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


def begin_reading(session: Session) -> None:
    """Start the session's transaction as a plain reader's even from a writer factory: on
    SQLite it then holds no write lock, so a long read (rendering owners' templates) lets a
    webhook store a customer's STOP meanwhile."""
    if session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={"sqlite_begin": "DEFERRED"})


def refresh_statistics(engine: Engine) -> None:
    """SQLite keeps no statistics of its tables unless asked: without them its planner reads
    a period's sent follow-ups through the index on their status (every follow-up ever sent)
    instead of the one on their sending time (a dashboard of 100 000 follow-ups took 270 ms
    instead of 70). A whole ANALYZE: a sampled one misjudged the very index that matters; it
    reads 100 000 follow-ups in a tenth of a second. PostgreSQL's autovacuum keeps its own."""
    if engine.dialect.name != "sqlite":
        return
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")


def side_by_side(session: Session) -> None:
    """Start a long read that others run beside (the dashboard's parts, a download): a plain
    reader's transaction (`begin_reading`: on SQLite no write lock). On PostgreSQL its queries
    keep to one core each, instead of gathering workers that would take the other parts' cores
    (on two cores, starting them cost more than they saved); and a lookup by index is priced
    as the read from memory it is for these hot tables, not as a disk's seek (the default 4):
    one product's ratings were read by scanning a million follow-ups rather than looking up
    fifteen thousand of them by id (917 -> 145 ms)."""
    begin_reading(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        session.execute(text("SET LOCAL random_page_cost = 1.1"))


def begin_writing(session: Session) -> None:
    """Start the session's next transaction as a writer's (BEGIN IMMEDIATE on SQLite, see
    `make_session_factory`), for code that reads and then writes under contention, such as
    parallel requests recording sales. Does nothing inside a transaction already begun."""
    if not session.in_transaction() and session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


def wait_for_locks(session: Session, seconds: float) -> None:
    """Let this transaction wait at most `seconds` for a row lock (PostgreSQL), then fail with
    OperationalError instead of queueing behind a long one. SQLite has no row locks: its one
    writer lock is bounded by the busy timeout."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL lock_timeout = '{int(seconds * 1000)}ms'"))


@contextmanager
def planned_with_their_values(session: Session) -> Iterator[None]:
    """Statements inside are planned with their values on PostgreSQL, never from a plan kept
    for the query: psycopg prepares a query after a few runs, and the generic plan PostgreSQL
    then keeps was made while a table was small. During a large import, the lookups of
    customers by phone kept scanning the whole table (27 of 52 s for 20 000 sales); planned
    with their values they use the index. Transaction-scoped, and only around these lookups:
    planning every statement so would slow the rest."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    try:
        yield
    finally:
        session.execute(text("SET LOCAL plan_cache_mode = auto"))


def insert_or_else(session: Session, model: type[Any]) -> PostgresInsert | SqliteInsert:
    """An INSERT of `model` that can say what to do ON CONFLICT, in the session's dialect:
    SQLite and PostgreSQL spell it alike, and SQLAlchemy's generic INSERT cannot say it."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql_insert(model)
    return sqlite_insert(model)


def stale_first(
    session: Session,
    rows: Select[*Ts],
    read_with: Any,
    fingerprint: str,
    *,
    limit: int,
) -> list[Row[*Ts]]:
    """Up to `limit` of `rows` whose column `read_with` says they were worked out with other
    than `fingerprint`: those never worked out (null), then those worked out otherwise, each
    along an index whose leading column is `read_with` (`<` or `>`, not `!=`: an index
    answers both), locked for the caller's update; rows another worker holds are skipped."""
    found: list[Row[*Ts]] = []
    for other in (read_with.is_(None), or_(read_with < fingerprint, read_with > fingerprint)):
        if len(found) < limit:
            found += session.execute(
                rows.where(other).limit(limit - len(found)).with_for_update(skip_locked=True)
            ).all()
    return found
