"""What the benchmarks share: a fresh SQLite database, sales made up in bulk, a settable clock."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # for `tests.twilio_fake` when run as bench/NAME.py
    sys.path.insert(0, str(ROOT))

from scheduler.collector import freeze_loaded  # noqa: E402
from scheduler.config import Config  # noqa: E402
from scheduler.db import make_engine, make_session_factory  # noqa: E402
from scheduler.defaults import install_defaults  # noqa: E402
from scheduler.schema import upgrade  # noqa: E402
from scheduler.sending.composing import load_composer  # noqa: E402
from scheduler.sending.dispatch import Dispatcher  # noqa: E402
from scheduler.sending.sales import SaleInput, record_sales  # noqa: E402
from scheduler.sending.transports import make_transports  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in Lima
DAY1 = NOW + timedelta(days=1)  # Tuesday 10:00 in Lima: every day-1 thank-you is due
BATCH = 1_000  # sales per transaction, as an import would record them
FOLLOW_UPS_TARGET = 30_000  # follow-ups planned per second on SQLite, recorded or imported


class Clock:
    """A clock moved by hand: dispatch reads the time only through it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


D = TypeVar("D", bound=Dispatcher)


def ready_dispatcher(
    sessions: sessionmaker[Session],
    config: Config,
    kind: type[D],
    worker_id: str = "bench",
) -> D:
    """A dispatcher of `kind` as the worker builds one, at DAY1 without jitter, with what a
    pass loads loaded and frozen, as `postventa worker` has before its first pass."""
    clock = Clock(DAY1)
    transports = make_transports(config, sessions, clock)
    dispatcher = kind(
        sessions, config, transports, worker_id=worker_id, clock=clock, jitter=lambda: 0.0
    )
    load_composer()
    freeze_loaded()
    return dispatcher


def fresh_database(where: Path | str) -> sessionmaker[Session]:
    """A new database, migrated, with the default cadence and templates: SQLite at a path, or
    any database URL."""
    engine = make_engine(f"sqlite:///{where}" if isinstance(where, Path) else where)
    upgrade(engine)
    sessions = make_session_factory(engine, writer=True)
    with sessions.begin() as session:
        install_defaults(session, NOW)
    return sessions


def sale_inputs(start: int, count: int) -> Iterator[SaleInput]:
    """New sales at NOW, each by its own customer (own phone, so the minimum gap between two
    messages never applies), of one of 20 products."""
    for n in range(start, start + count):
        yield SaleInput(
            external_id=f"S-{n}",
            sold_at=NOW,
            customer_name=f"Cliente {n}",
            phone=f"+5199{n:07d}",
            product_sku=f"SKU-{n % 20}",
            product_name=f"Producto {n % 20}",
            amount=Decimal("199.90"),
            currency="PEN",
            attributes={"store": "Miraflores"},
        )


def record(sessions: sessionmaker[Session], config: Config, count: int, start: int = 0) -> float:
    """Record `count` sales in transactions of BATCH through `record_sales`; returns seconds."""
    began = time.perf_counter()
    for first in range(start, start + count, BATCH):
        with sessions.begin() as session:
            batch = list(sale_inputs(first, min(BATCH, start + count - first)))
            record_sales(session, batch, config=config, now=NOW, actor="bench")
    return time.perf_counter() - began


def follow_ups_rate(label: str, follow_ups: int, seconds: float, *, target: bool) -> str:
    """`label`'s follow-ups planned per second; with `target`, against FOLLOW_UPS_TARGET."""
    rate = follow_ups / seconds
    line = f"{label}: {spaced(rate)} follow-ups/s"
    if target:
        met = "yes" if rate >= FOLLOW_UPS_TARGET else "no"
        line += f" (target >= {spaced(FOLLOW_UPS_TARGET)} follow-ups/s, met: {met})"
    return line


def spaced(number: float) -> str:
    """A whole number with its thousands apart, as the figures are written: 30 000."""
    return f"{number:,.0f}".replace(",", " ")


@contextmanager
def temporary_postgres() -> Iterator[str]:
    """A new database on the PostgreSQL of 127.0.0.1:5432 for one run, dropped afterwards; its
    URL. psycopg.OperationalError when the server does not answer."""
    import psycopg

    name = f"postventa_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


OWNER = "duena@example.pe"  # the made-up owner the page benchmarks log in as
OWNER_PASSWORD = "una clave de banco"  # noqa: S105 - of a throwaway database


def owner_browser(config: Config) -> Any:
    """The Flask app on `config`'s database, and a test client logged in as OWNER (the
    bench's own log-in: no CSRF form to read first)."""
    from web import create_app

    app = create_app(config)
    app.config["WTF_CSRF_ENABLED"] = False
    browser = app.test_client()
    logged = browser.post("/login", data={"email": OWNER, "password": OWNER_PASSWORD})
    assert logged.status_code == 302, logged.get_data(as_text=True)[:500]
    return browser


def median_seconds(work: Callable[[], object], runs: int) -> float:
    """The median wall time of `runs` calls of `work`."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


SHOP_FOLLOW_UPS = 1_000_000  # the busy shop of the page benchmarks (dashboard, lists)


def add_size_options(parser: argparse.ArgumentParser) -> None:
    """The page benchmarks' sizes: --quick (a tenth of the shop) or --follow-ups N."""
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument(
        "--follow-ups",
        type=int,
        metavar="N",
        help=f"follow-ups to load ({SHOP_FOLLOW_UPS:,}), the other rows in proportion",
    )


def shop_scale(args: argparse.Namespace) -> float:
    """The rows to load, as a multiple of the busy shop's (`add_size_options`)."""
    if args.follow_ups:
        return args.follow_ups / SHOP_FOLLOW_UPS
    return 0.1 if args.quick else 1.0


# Each customer's latest sale (`customers.last_sold_at`, migration 0025), all at once.
FILL_LAST_SOLD_AT = (
    "UPDATE customers SET last_sold_at = latest.at FROM (SELECT customer_id, max(sold_at) AS at "
    "FROM sales GROUP BY customer_id) latest WHERE customers.id = latest.customer_id"
)


@contextmanager
def sales_trigger_off(connection: Connection) -> Iterator[None]:
    """PostgreSQL, while sales are loaded: their trigger off (it reads a customer's sales again
    for each sale written, a row at a time), then each customer's latest sale filled at once."""
    connection.execute(text("ALTER TABLE sales DISABLE TRIGGER USER"))
    yield
    connection.execute(text("ALTER TABLE sales ENABLE TRIGGER USER"))
    connection.execute(text(FILL_LAST_SOLD_AT))
