"""What the benchmarks share: a fresh SQLite database, sales made up in bulk, a settable clock."""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # for `tests.twilio_fake` when run as bench/NAME.py
    sys.path.insert(0, str(ROOT))

from scheduler.config import Config  # noqa: E402
from scheduler.db import make_engine, make_session_factory  # noqa: E402
from scheduler.defaults import install_defaults  # noqa: E402
from scheduler.schema import upgrade  # noqa: E402
from scheduler.sending.sales import SaleInput, record_sales  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in Lima
DAY1 = NOW + timedelta(days=1)  # Tuesday 10:00 in Lima: every day-1 thank-you is due
BATCH = 1_000  # sales per transaction, as an import would record them


class Clock:
    """A clock moved by hand: dispatch reads the time only through it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


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
