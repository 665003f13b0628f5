"""A large CSV import, end to end, as `postventa import-sales` runs it: every row checked,
the good ones stored chunk by chunk while the rest are still being checked.

Makes a Shopify orders export of 100 000 lines (orders of one to three items, one line per
item as Shopify writes them, each order by its own customer) and a plain CSV of 100 000 sales
(each by its own customer, one of 20 products), and imports each (`read_table`, then
`check_table` with `Storing`) into a fresh SQLite database and a temporary PostgreSQL database
on 127.0.0.1:5432; prints the time of the check alone (as `--dry-run` runs it), of the whole
import, and the peak memory: Python's own allocations (tracemalloc) and the process's peak
resident size; then each import's follow-ups planned per second, checked and stored (target on
SQLite >= 30 000, as `plan_sales.py`'s). A list left unsplit fails here on PostgreSQL ("number
of parameters must be between 0 and 65535").

    .venv/bin/python bench/import_large.py                  # 100 000 rows, both databases
    .venv/bin/python bench/import_large.py --shopify-only   # the Shopify export alone
    .venv/bin/python bench/import_large.py --quick          # 10 000 rows (or BENCH_QUICK=1)
    .venv/bin/python bench/import_large.py --sqlite-only
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

from common import NOW, follow_ups_rate, fresh_database, temporary_postgres
from sqlalchemy import func, select

from scheduler.collector import freeze_loaded
from scheduler.config import defaults
from scheduler.models import Customer, FollowUp, Sale
from scheduler.sending.csv_import import Storing, check_table, read_table
from tests.shop_exports import SHOPIFY_HEADER, as_csv, shopify_lines

TRACE = False  # --trace: tracemalloc, which slows every allocation several times over


def make_csv(rows: int) -> str:
    lines = ["external_id,sold_at,customer_name,phone,product_sku,product_name,amount,store"]
    lines += [
        f"I-{n},2026-11-23T09:00,Cliente {n},+5199{n:07d},SKU-{n % 20},Producto {n % 20},"
        f"199.90,Miraflores"
        for n in range(rows)
    ]
    return "\n".join(lines) + "\n"


def make_shopify_export(lines: int) -> str:
    """Orders of 1, 2 and 3 items in turn, until the file has `lines` lines after its header."""
    rows: list[dict[str, str]] = []
    number = 1000
    while len(rows) < lines:
        number += 1
        items = [
            (f"SKU-{(number + k) % 20}", f"Producto {(number + k) % 20}", 1 + k, f"{99 + k}.90")
            for k in range(min(1 + number % 3, lines - len(rows)))
        ]
        rows += shopify_lines(
            number,
            items=items,
            email=f"c{number}@example.pe",
            phone=f"+5199{number:07d}",
            paid_at="2026-11-23 09:00:00 -0500",
            billing_name=f"Cliente {number}",
        )
    return as_csv(SHOPIFY_HEADER, rows)


TARGET_SECONDS = 30  # a 100 000-line Shopify export, checked and stored, on SQLite


def run(label: str, where: Path | str, text: str, target: float | None = None) -> str:
    """Import `text` into a fresh database at `where` and say how it went; the line of its
    follow-ups planned per second (against the target on SQLite)."""
    config = defaults()
    sessions = fresh_database(where)
    began = time.perf_counter()
    dry = check_table(read_table(text), config, now=NOW)
    checked = time.perf_counter() - began
    if TRACE:
        tracemalloc.start()
    freeze_loaded()  # as `postventa import-sales` does before it reads the file
    began = time.perf_counter()
    with sessions() as session:
        storing = Storing(session, config=config, now=NOW, actor="bench")
        check = check_table(read_table(text), config, now=NOW, storing=storing)
    took = time.perf_counter() - began
    done = storing.result()
    peak = tracemalloc.get_traced_memory()[1] if TRACE else 0
    tracemalloc.stop()
    with sessions() as session:
        counts = [
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Sale, Customer, FollowUp)
        ]
    assert done.failure is None, done.failure
    assert counts[0] == check.rows == dry.rows == done.created, (counts, check.rows, done)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        f"{label}: {check.rows} sales checked alone in {checked:.1f} s; "
        f"checked and stored in {took:.1f} s ({check.rows / took:.0f} sales/s); "
        f"{counts[0]} sales, {counts[1]} customers, {counts[2]} follow-ups; "
        + (f"peak Python allocations {peak / 2**20:.0f} MiB (tracemalloc); " if TRACE else "")
        + f"process peak RSS so far {rss:.0f} MiB"
    )
    if target is not None:
        met = "yes" if took < target else "no"
        print(f"{label}: target under {target:g} s in all: {took:.1f} s, met: {met}")
    sessions.kw["bind"].dispose()
    return follow_ups_rate(label, counts[2], took, target=isinstance(where, Path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--rows", type=int, help="rows in the file (default 100 000, quick 10 000)")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--shopify-only", action="store_true")
    parser.add_argument("--trace", action="store_true", help="peak allocations by tracemalloc")
    args = parser.parse_args()
    global TRACE
    TRACE = args.trace
    rows = args.rows or (10_000 if args.quick else 100_000)
    files = [("Shopify export", make_shopify_export(rows))]
    if not args.shopify_only:
        files.append(("plain CSV", make_csv(rows)))
    rates = []
    for kind, text in files:
        print(f"{kind} of {rows} lines, {len(text.encode()) / 2**20:.1f} MiB")
        with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
            target = TARGET_SECONDS if kind == "Shopify export" and rows == 100_000 else None
            rates.append(run(f"{kind}, SQLite", Path(tmp) / "bench.db", text, target))
        if args.sqlite_only:
            continue
        with temporary_postgres() as url:
            rates.append(run(f"{kind}, PostgreSQL", url, text))
    print("follow-ups planned per second, checked and stored:")
    print("\n".join(rates))


if __name__ == "__main__":
    main()
