"""Our follow-up table against one APScheduler 3.x `date` job per follow-up, side by side.

(a) 100 000 follow-ups planned by our code: 25 000 sales through `record_sales` with the default
    cadence (4 follow-ups each), 1 000 sales per transaction, SQLite.
(b) the same follow-ups as APScheduler jobs: one `date` job each (run date = the follow-up's due
    time), `add_job(..., jobstore="default")` into a `SQLAlchemyJobStore` on its own SQLite file,
    on a BackgroundScheduler started paused. When the whole number would take longer than the
    time budget, the jobs added within the budget are measured and the rest extrapolated, and
    the output says so.
(c) (optional, on by default) a burst: N date jobs all due at the same instant, the scheduler
    resumed, with the default misfire_grace_time: how many ran and how many were dropped.

    .venv/bin/python bench/apscheduler_jobstore.py            # 100 000; (c) 10 000
    .venv/bin/python bench/apscheduler_jobstore.py --quick    # 10 000; (c) 2 000
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from common import fresh_database, record
from sqlalchemy import select

from scheduler.config import defaults
from scheduler.models import FollowUp

PER_SALE = 4  # follow-ups the default cadence plans for a one-off purchase


def send_follow_up(follow_up_id: int) -> None:
    """What a job would call; stored in the job store by reference (module:function)."""


def ours(tmp: str, follow_ups: int) -> tuple[list[tuple[int, datetime]], float]:
    """Plan `follow_ups` follow-ups with our code; returns (id, due_at) of each, and seconds."""
    sessions = fresh_database(Path(tmp) / "ours.db")
    seconds = record(sessions, defaults(), -(-follow_ups // PER_SALE))
    with sessions() as session:
        rows = [(int(i), due) for i, due in session.execute(select(FollowUp.id, FollowUp.due_at))]
    return rows[:follow_ups], seconds


def paused_scheduler(path: Path) -> tuple[BackgroundScheduler, SQLAlchemyJobStore]:
    store = SQLAlchemyJobStore(url=f"sqlite:///{path}")
    scheduler = BackgroundScheduler(jobstores={"default": store}, timezone=UTC)
    scheduler.start(paused=True)
    return scheduler, store


def apscheduler_jobs(
    tmp: str, rows: list[tuple[int, datetime]], budget: float
) -> tuple[int, float]:
    """Add one date job per row until done or out of budget; returns (jobs added, seconds)."""
    scheduler, _store = paused_scheduler(Path(tmp) / "apscheduler.db")
    added = 0
    began = time.perf_counter()
    try:
        for follow_up_id, due_at in rows:
            scheduler.add_job(
                send_follow_up,
                "date",
                run_date=due_at,
                args=[follow_up_id],
                id=f"follow-up:{follow_up_id}",
                jobstore="default",
            )
            added += 1
            if added % 500 == 0 and time.perf_counter() - began > budget:
                break
        seconds = time.perf_counter() - began
    finally:
        scheduler.shutdown(wait=False)
    return added, seconds


def burst(tmp: str, jobs: int, insert_rate: float) -> None:
    """`jobs` date jobs due at one instant; count what ran and what was dropped as missed."""
    scheduler, _store = paused_scheduler(Path(tmp) / "burst.db")
    outcomes: dict[str, int] = {"executed": 0, "missed": 0, "error": 0}
    lock = threading.Lock()
    finished = threading.Event()

    def listen(event: Any) -> None:
        kind = {EVENT_JOB_EXECUTED: "executed", EVENT_JOB_MISSED: "missed"}.get(event.code, "error")
        with lock:
            outcomes[kind] += 1
            if sum(outcomes.values()) >= jobs:
                finished.set()

    scheduler.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    margin = jobs / insert_rate * 1.5 + 5  # all of them in the store before they fall due
    due = datetime.now(UTC) + timedelta(seconds=margin)
    try:
        for n in range(jobs):
            scheduler.add_job(send_follow_up, "date", run_date=due, args=[n], jobstore="default")
        late = (datetime.now(UTC) - due).total_seconds()
        scheduler.resume()
        finished.wait(timeout=max(0.0, (due - datetime.now(UTC)).total_seconds()) + 180)
        drained = (datetime.now(UTC) - due).total_seconds()
    finally:
        scheduler.shutdown(wait=False)
    print(
        f"(c) burst: {jobs} date jobs due at one instant, default misfire_grace_time "
        f"(1 s), ThreadPoolExecutor(10)"
    )
    if late > 0:
        print(f"    note: inserting ended {late:.1f} s after the due time")
    print(
        f"    ran {outcomes['executed']}, dropped as missed {outcomes['missed']} "
        f"({outcomes['missed'] / jobs:.0%}), errors {outcomes['error']}; "
        f"all accounted for {drained:.1f} s after the due time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--jobs", type=int, help="follow-ups/jobs (default 100 000, quick 10 000)")
    parser.add_argument(
        "--budget", type=float, default=600, help="seconds for adding APScheduler jobs"
    )
    parser.add_argument("--burst", type=int, help="(c) jobs due at once; 0 skips (c)")
    args = parser.parse_args()
    count = args.jobs or (10_000 if args.quick else 100_000)
    burst_jobs = args.burst if args.burst is not None else (2_000 if args.quick else 10_000)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory(prefix="bench-aps-") as tmp:
        rows, ours_seconds = ours(tmp, count)
        ours_rate = len(rows) / ours_seconds
        print("apscheduler_jobstore: SQLite, the same follow-ups as rows vs as APScheduler jobs")
        print(
            f"(a) ours: {len(rows)} follow-ups planned (record_sales, default cadence, "
            f"1 000 sales per transaction) in {ours_seconds:.1f} s: {ours_rate:.0f} follow-ups/s"
        )
        added, aps_seconds = apscheduler_jobs(tmp, rows, args.budget)
        aps_rate = added / aps_seconds
        print(
            f"(b) APScheduler {_version()} SQLAlchemyJobStore, one date job per follow-up: "
            f"{added} jobs added in {aps_seconds:.1f} s: {aps_rate:.0f} jobs/s"
        )
        if added < len(rows):
            print(
                f"    EXTRAPOLATED: {len(rows)} jobs would take about "
                f"{len(rows) / aps_rate:.0f} s at that rate (only {added} were measured, "
                f"time budget {args.budget:.0f} s)"
            )
        print(f"ratio ours / APScheduler (insert rate): {ours_rate / aps_rate:.1f}x")
        if burst_jobs:
            burst(tmp, burst_jobs, aps_rate)


def _version() -> str:
    from importlib.metadata import version

    return version("APScheduler")


if __name__ == "__main__":
    main()
