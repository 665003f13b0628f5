"""Planning rate: new sales recorded through `record_sales` with the default cadence.

Each sale is new (its own customer, one of 20 products), recorded in transactions of 1 000 on
a fresh SQLite database, as an import or a busy API would; the figure is follow-up rows planned
per second (target >= 10 000). `--profile` prints the top functions of a further 5 000 sales.

    .venv/bin/python bench/plan_sales.py            # 100 000 sales
    .venv/bin/python bench/plan_sales.py --quick    # 10 000 sales (or BENCH_QUICK=1)
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
from pathlib import Path

from common import fresh_database, record
from sqlalchemy import func, select

from scheduler.config import defaults
from scheduler.models import FollowUp, Sale

TARGET = 10_000  # follow-ups planned per second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--sales", type=int, help="sales to record (default 100 000, quick 10 000)")
    parser.add_argument("--profile", action="store_true", help="profile 5 000 more sales")
    args = parser.parse_args()
    count = args.sales or (10_000 if args.quick else 100_000)
    config = defaults()
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        sessions = fresh_database(Path(tmp) / "bench.db")
        seconds = record(sessions, config, count)
        with sessions() as session:
            sales = session.scalar(select(func.count()).select_from(Sale)) or 0
            follow_ups = session.scalar(select(func.count()).select_from(FollowUp)) or 0
        rate = follow_ups / seconds
        print("plan_sales: SQLite, default cadence, 1 000 sales per transaction")
        print(f"sales recorded: {sales} in {seconds:.1f} s")
        print(f"follow-ups planned: {follow_ups} ({follow_ups / sales:.1f} per sale)")
        print(f"sales/s: {sales / seconds:.0f}")
        print(f"follow-ups/s: {rate:.0f} (target >= {TARGET})")
        print(f"target met: {'yes' if rate >= TARGET else 'no'}")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(record, sessions, config, 5_000, count)
            print("--- cProfile of 5 000 more sales, top 20 ---", file=sys.stderr)
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(20)


if __name__ == "__main__":
    main()
