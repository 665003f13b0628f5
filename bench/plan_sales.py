"""Planning rate: new sales recorded through `record_sales` with the default cadence.

Each sale is new (its own customer, one of 20 products), recorded in transactions of 1 000 on
a fresh SQLite database and on a temporary PostgreSQL database on 127.0.0.1:5432, as an import
or a busy API would; the figure is follow-up rows planned per second (target on SQLite
>= 30 000). `--profile` prints the top functions of a further 5 000 sales on SQLite.

    .venv/bin/python bench/plan_sales.py                # 100 000 sales, both databases
    .venv/bin/python bench/plan_sales.py --quick        # 10 000 sales (or BENCH_QUICK=1)
    .venv/bin/python bench/plan_sales.py --sqlite-only
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from common import (
    follow_ups_rate,
    fresh_database,
    record,
    spaced,
    temporary_postgres,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.config import Config, defaults
from scheduler.models import FollowUp, Sale


def measure(label: str, sessions: sessionmaker[Session], config: Config, count: int) -> str:
    """Record `count` sales and say what was planned; the line of its follow-ups per second.
    This process's CPU time is said too: on a machine shared with other work, the wall time
    also counts the waits for a core (and, on PostgreSQL, the server's own work)."""
    began = time.process_time()
    seconds = record(sessions, config, count)
    cpu = time.process_time() - began
    with sessions() as session:
        sales = session.scalar(select(func.count()).select_from(Sale)) or 0
        follow_ups = session.scalar(select(func.count()).select_from(FollowUp)) or 0
    print(
        f"{label}: {sales} sales recorded in {seconds:.1f} s ({sales / seconds:.0f} sales/s; "
        f"this process's CPU {cpu:.1f} s, {spaced(follow_ups / cpu)} follow-ups/s), "
        f"{follow_ups} follow-ups planned ({follow_ups / sales:.1f} per sale)"
    )
    return follow_ups_rate(label, follow_ups, seconds, target=label == "SQLite")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--sales", type=int, help="sales to record (default 100 000, quick 10 000)")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile 5 000 more (SQLite)")
    args = parser.parse_args()
    count = args.sales or (10_000 if args.quick else 100_000)
    config = defaults()
    print(f"plan_sales: default cadence, 1 000 sales per transaction, {spaced(count)} sales")
    rates = []
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        sessions = fresh_database(Path(tmp) / "bench.db")
        rates.append(measure("SQLite", sessions, config, count))
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(record, sessions, config, 5_000, count)
            print("--- cProfile of 5 000 more sales, top 20 ---", file=sys.stderr)
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(20)
        sessions.kw["bind"].dispose()
    if not args.sqlite_only:
        with temporary_postgres() as url:
            sessions = fresh_database(url)
            rates.append(measure("PostgreSQL", sessions, config, count))
            sessions.kw["bind"].dispose()
    print("\n".join(rates))


if __name__ == "__main__":
    main()
