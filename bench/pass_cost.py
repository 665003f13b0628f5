"""Cost of a pass as the table grows: 1 000 due follow-ups among 10 000, then 1 000 000 future.

Rows are bulk-inserted with SQLAlchemy Core (executemany) straight into the tables: 1 000 due
day-1 thank-yous (each sale by its own customer, so no minimum gap applies) and the future
follow-ups, due in about a month, spread over sales of a few reused customers and the ten steps
of an extra cadence (follow_ups is unique on (sale_id, step_id)). On PostgreSQL the future ones
are made by the database itself (INSERT ... SELECT over generate_series), then VACUUM ANALYZE:
5 000 000 in minutes. Only `run_pass` (outbox transport) is timed; between repetitions the due
follow-ups are put back as they were.

    .venv/bin/python bench/pass_cost.py             # 10 000 vs 1 000 000 future, SQLite
    .venv/bin/python bench/pass_cost.py --quick     # 10 000 vs 100 000, 3 repetitions
    .venv/bin/python bench/pass_cost.py --postgres  # also PostgreSQL on 127.0.0.1:5432
    .venv/bin/python bench/pass_cost.py --postgres-only --large 5000000  # PostgreSQL alone
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from common import DAY1, NOW, Clock, sales_trigger_off, temporary_postgres
from sqlalchemy import Engine, delete, func, insert, select, text, update

from scheduler.config import defaults
from scheduler.db import make_engine, make_session_factory
from scheduler.defaults import install_defaults
from scheduler.lifecycle import Channel, FollowUpStatus
from scheduler.models import (
    Cadence,
    CadenceStep,
    Customer,
    FollowUp,
    Message,
    OutboxEntry,
    Product,
    Sale,
)
from scheduler.schema import upgrade
from scheduler.sending.dispatch import Dispatcher
from scheduler.sending.transports import make_transports

DUE = 1_000
FILLER_STEPS = 10
FILLER_CUSTOMERS = 1_000
CHUNK = 50_000
TARGET = 1.5  # largest / smallest median pass time
MONTH = DAY1 + timedelta(days=30)  # the future follow-ups are due in about a month

# PostgreSQL's own filler (`Bench._grow_in_sql`): sales F-first .. F-(sales - 1) of the filler
# customers in turn, then their follow-ups, sale by sale and step by step, up to `future`.
FILLER_SALES = text(
    "INSERT INTO sales (external_id, customer_id, product_id, sold_at, status, attributes, "
    "created_at) SELECT 'F-' || n, (:customers)[1 + n % cardinality(:customers)], :product, "
    ":now, 'active', '{}', :now FROM generate_series(:first, :sales - 1) n"
)
FILLER_FOLLOW_UPS = text(
    "INSERT INTO follow_ups (sale_id, step_id, customer_id, channel, due_at, status, attempts, "
    "facts, created_at, updated_at) SELECT s.id, (:steps)[k + 1], s.customer_id, 'sms', "
    ":month + make_interval(secs => (s.n * cardinality(:steps) + k) % 86400), 'scheduled', 0, "
    "'{}', :now, :now FROM (SELECT id, customer_id, substr(external_id, 3)::int AS n "
    "FROM sales WHERE external_id LIKE 'F-%') s CROSS JOIN generate_series(0, "
    "cardinality(:steps) - 1) k WHERE s.n >= :first AND s.n * cardinality(:steps) + k < :future "
    "ORDER BY s.n, k"
)


def chunks(rows: Iterator[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def bulk(engine: Engine, table: Any, rows: Iterator[dict[str, Any]]) -> None:
    for batch in chunks(rows):
        with engine.begin() as connection:
            connection.execute(insert(table), batch)


class Bench:
    """One database: the fixed rows, the future follow-ups added on demand, the timed passes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = make_session_factory(engine, writer=True)
        self.config = defaults()
        self.future_sales = 0  # filler sales inserted so far
        upgrade(engine)
        with self.sessions.begin() as session:
            install_defaults(session, NOW)
            self.day1 = session.scalars(
                select(CadenceStep.id).where(CadenceStep.key == "day1-thanks")
            ).one()
            filler = Cadence(name="Bench filler", created_at=NOW, updated_at=NOW)
            filler.steps = [
                CadenceStep(
                    key=f"filler-{n}",
                    offset_minutes=60 * 24 * (30 + n),
                    channel=Channel.SMS,
                    template_name="thanks",
                )
                for n in range(FILLER_STEPS)
            ]
            product = Product(sku="SKU-1", name="Lavadora")
            session.add_all([filler, product])
            session.flush()
            self.filler_steps = [step.id for step in filler.steps]
            self.product = product.id
        customers = (
            {"name": f"Cliente {n}", "phone": f"+5199{n:07d}", "created_at": NOW}
            for n in range(DUE + FILLER_CUSTOMERS)
        )
        bulk(engine, Customer, customers)
        with self.sessions() as session:
            ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
        self.due_customers, self.filler_customers = ids[:DUE], ids[DUE:]
        due_sales = (
            self._sale(f"D-{n}", customer) for n, customer in enumerate(self.due_customers)
        )
        bulk(engine, Sale, due_sales)
        with self.sessions() as session:
            sales = session.execute(
                select(Sale.id, Sale.customer_id).where(Sale.external_id.like("D-%"))
            ).all()
        due_at = DAY1 - timedelta(minutes=1)
        bulk(engine, FollowUp, (self._follow_up(s, self.day1, c, due_at) for s, c in sales))

    def _sale(self, external_id: str, customer: int) -> dict[str, Any]:
        return {
            "external_id": external_id,
            "customer_id": customer,
            "product_id": self.product,
            "sold_at": NOW,
            "attributes": {},
            "created_at": NOW,
        }

    @staticmethod
    def _follow_up(sale: int, step: int, customer: int, due_at: datetime) -> dict[str, Any]:
        return {
            "sale_id": sale,
            "step_id": step,
            "customer_id": customer,
            "channel": Channel.SMS,
            "due_at": due_at,
            "status": FollowUpStatus.SCHEDULED,
            "attempts": 0,
            "facts": {},
            "created_at": NOW,
            "updated_at": NOW,
        }

    def grow(self, future: int) -> float:
        """Add future follow-ups until there are `future`; returns the seconds it took."""
        began = time.perf_counter()
        wanted_sales = -(-future // FILLER_STEPS)
        if self.engine.dialect.name == "postgresql":
            self._grow_in_sql(future, wanted_sales)
        else:
            self._grow_in_rows(future, wanted_sales)
        self.future_sales = wanted_sales
        return time.perf_counter() - began

    def _grow_in_rows(self, future: int, wanted_sales: int) -> None:
        first = self.future_sales
        customers = self.filler_customers
        bulk(
            self.engine,
            Sale,
            (
                self._sale(f"F-{n}", customers[n % len(customers)])
                for n in range(first, wanted_sales)
            ),
        )
        with self.sessions() as session:
            sales = session.execute(
                select(Sale.id, Sale.customer_id)
                .where(Sale.external_id.like("F-%"))
                .order_by(Sale.id)
                .offset(first)
            ).all()

        def rows() -> Iterator[dict[str, Any]]:
            for n, (sale, customer) in enumerate(sales, start=first):
                for k, step in enumerate(self.filler_steps):
                    if n * FILLER_STEPS + k < future:
                        due = MONTH + timedelta(seconds=(n * FILLER_STEPS + k) % 86_400)
                        yield self._follow_up(sale, step, customer, due)

        bulk(self.engine, FollowUp, rows())

    def _grow_in_sql(self, future: int, wanted_sales: int) -> None:
        """The rows of `_grow_in_rows`, in the same order, made by PostgreSQL itself (INSERT
        ... SELECT over generate_series, as bench/lists.py loads): 5 000 000 in minutes, not an
        hour; the sales' trigger off meanwhile (`sales_trigger_off`); then VACUUM ANALYZE, as
        autovacuum soon would."""
        values = {
            "first": self.future_sales,
            "sales": wanted_sales,
            "future": future,
            "customers": self.filler_customers,
            "steps": self.filler_steps,
            "product": self.product,
            "now": NOW,
            "month": MONTH,
        }
        with self.engine.begin() as connection:
            with sales_trigger_off(connection):
                connection.execute(FILLER_SALES, values)
            connection.execute(FILLER_FOLLOW_UPS, values)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))

    def counts(self) -> tuple[int, int]:
        with self.sessions() as session:
            total = session.scalar(select(func.count()).select_from(FollowUp)) or 0
            due = session.scalar(
                select(func.count())
                .select_from(FollowUp)
                .where(FollowUp.status == FollowUpStatus.SCHEDULED, FollowUp.due_at <= DAY1)
            )
        return total, due or 0

    def reset(self) -> None:
        """Put the due follow-ups back as they were before the pass."""
        with self.sessions.begin() as session:
            session.execute(delete(OutboxEntry))
            session.execute(delete(Message))
            session.execute(
                update(FollowUp)
                .where(FollowUp.step_id == self.day1)
                .values(
                    status=FollowUpStatus.SCHEDULED,
                    status_reason=None,
                    attempts=0,
                    provider_id=None,
                    sent_at=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=NOW,
                )
            )

    def timed_pass(self) -> tuple[float, dict[str, int]]:
        clock = Clock(DAY1)
        dispatcher = Dispatcher(
            self.sessions,
            self.config,
            make_transports(self.config, self.sessions, clock),
            worker_id="bench",
            clock=clock,
            jitter=lambda: 0.0,
        )
        began = time.perf_counter()
        summary = dispatcher.run_pass()
        seconds = time.perf_counter() - began
        self.reset()
        return seconds, summary


def measure(name: str, engine: Engine, sizes: list[int], repeats: int) -> None:
    print(f"[{name}] {DUE} due follow-ups, {repeats} passes per size, median pass time")
    bench = Bench(engine)
    medians = []
    for future in sizes:
        grown = bench.grow(future)
        total, due = bench.counts()
        times = []
        for _ in range(repeats):
            seconds, summary = bench.timed_pass()
            if summary["sent"] != DUE:
                raise SystemExit(f"expected {DUE} sent, got {json.dumps(summary)}")
            times.append(seconds)
        median = statistics.median(times)
        medians.append(median)
        shown = ", ".join(f"{t:.2f}" for t in times)
        print(
            f"  future {future:>9,}: rows {total:>9,} (due {due}), inserted in {grown:5.1f} s; "
            f"pass median {median:.3f} s ({DUE / median:.0f} follow-ups/s); runs {shown}"
        )
    ratio = medians[-1] / medians[0]
    print(
        f"  ratio {sizes[-1]:,} / {sizes[0]:,} future: {ratio:.2f} (target <= {TARGET}); "
        f"target met: {'yes' if ratio <= TARGET else 'no'}"
    )


def sqlite(sizes: list[int], repeats: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-pass-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            measure("SQLite", engine, sizes, repeats)
        finally:
            engine.dispose()


def postgres(sizes: list[int], repeats: int) -> None:
    import psycopg

    try:
        with temporary_postgres() as url:
            engine = make_engine(url)
            try:
                measure("PostgreSQL", engine, sizes, repeats)
            finally:
                engine.dispose()
    except psycopg.OperationalError as error:
        print(f"[PostgreSQL] not measured: {error}".splitlines()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--large", type=int, help="future follow-ups, large size")
    parser.add_argument("--repeats", type=int, help="passes per size (default 5, quick 3)")
    parser.add_argument("--postgres", action="store_true", help="also measure PostgreSQL")
    parser.add_argument("--postgres-only", action="store_true", help="measure PostgreSQL alone")
    args = parser.parse_args()
    large = args.large or (100_000 if args.quick else 1_000_000)
    repeats = args.repeats or (3 if args.quick else 5)
    sizes = [10_000, large]
    print("pass_cost: one run_pass (outbox transport) as the number of future follow-ups grows")
    if not args.postgres_only:
        sqlite(sizes, repeats)
    if args.postgres or args.postgres_only:
        postgres(sizes, repeats)


if __name__ == "__main__":
    main()
