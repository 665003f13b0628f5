"""What operations cost a busy shop on PostgreSQL (the rows of `bench/lists.py`: 100 000
customers, 1 000 000 follow-ups, 5 000 open cases), and what the log costs a dispatch pass.

(a) Through the Flask app, a logged-in owner and a scraper on loopback: `GET /metrics`,
    `GET /healthz?deep=1`, the *Workers* page, a customers page with the workers' warning
    under it, one customer's export (JSON) and erasure. Median of RUNS asks; the erasure once.
(b) One dispatch pass of 2 000 due follow-ups (SQLite, outbox) with the log off (the root
    logger's default: warnings only), as text and as JSON, written to /dev/null; each three
    times, alternating, median printed, and the ratio to the pass without a log.

    .venv/bin/python bench/operations.py            # the sizes above
    .venv/bin/python bench/operations.py --quick    # a tenth of them
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time

from common import median_seconds, owner_browser, temporary_postgres
from dispatch_rate import database, run
from flask.testing import FlaskClient
from lists import load_and_say

from scheduler import logs
from scheduler.config import defaults

RUNS = 7
PASSES = 3


def pages(url: str, runs: int) -> None:
    config = defaults().replace(database={"url": url})
    browser = owner_browser(config)
    scraper = browser.application.test_client()

    def ok(client: FlaskClient, path: str, *codes: int) -> None:
        answer = client.get(path)
        assert answer.status_code in (codes or (200,)), (path, answer.status_code)

    asks = [
        ("GET /metrics", lambda: ok(scraper, "/metrics")),
        ("GET /healthz?deep=1", lambda: ok(scraper, "/healthz?deep=1", 200, 503)),
        ("owner: /admin/workers", lambda: ok(browser, "/admin/workers")),
        ("owner: /customers (with the warning)", lambda: ok(browser, "/customers")),
        ("owner: customer 1's export (JSON)", lambda: ok(browser, "/customers/1/data.json")),
    ]
    for label, ask in asks:
        print(f"  {label:>40}: median {median_seconds(ask, runs) * 1000:6.1f} ms over {runs}")
    began = time.perf_counter()
    answer = browser.post("/customers/2/erase", data={"reason": "bench", "confirm": "2"})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    print(f"  {'owner: erase customer 2':>40}: {1000 * (time.perf_counter() - began):6.1f} ms once")
    browser.application.extensions["postventa"].engine.dispose()


def log_cost(count: int) -> None:
    config = defaults()
    root = logging.getLogger()
    kept = list(root.handlers), root.level
    formats = {"off": None, "text": "text", "json": "json"}
    seconds: dict[str, list[float]] = {name: [] for name in formats}
    stderr = sys.stderr
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as sink:
        try:
            for round_ in range(PASSES):
                for name, form in formats.items():
                    root.handlers[:], root.level = list(kept[0]), kept[1]
                    if form is not None:
                        logs.configure(config.replace(logging={"format": form}).logging)
                    sys.stderr = sink
                    try:
                        sessions = database(tmp, f"{name}-{round_}.db", count, config)
                        summary, took, _phases = run(sessions, config)
                    finally:
                        sys.stderr = stderr
                    assert summary["sent"] == count, summary
                    seconds[name].append(took)
        finally:
            root.handlers[:], root.level = kept
    base = statistics.median(seconds["off"])
    for name, taken in seconds.items():
        middle = statistics.median(taken)
        print(
            f"  log {name:>4}: {count / middle:6.0f} follow-ups/s (median of {PASSES}; "
            f"{middle / base:.2f}x the pass without a log)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    print("operations: metrics, health, workers, a customer's data; the log's cost")
    with temporary_postgres() as url:
        load_and_say(url, scale)
        pages(url, RUNS)
    log_cost(200 if args.quick else 2_000)


if __name__ == "__main__":
    main()
