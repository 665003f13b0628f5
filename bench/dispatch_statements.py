"""Where a dispatch on PostgreSQL spends its time, statement by statement.

One worker (this process) sends N follow-ups due at once with the outbox transport, in
batches of `[worker] batch_size`, on a temporary database of the PostgreSQL of 127.0.0.1:5432
(dropped afterwards), as `job_queues.py` runs it: N sales recorded through `record_sales`, one
day on (DAY1) their day-1 thank-yous due. Every statement the worker runs is timed from the
client (SQLAlchemy's cursor events: the server's work and the round trip), grouped by what it
does, and printed in ms per 1 000 follow-ups (a batch) beside the pass's wall time and this
process's CPU; what is left of the wall time is the worker's own Python and its commits.
Then the same for the job that copies the texts sent for the outbox's search (`sent-texts`),
which runs after the sends.

    .venv/bin/python bench/dispatch_statements.py               # 10 000 due
    .venv/bin/python bench/dispatch_statements.py --quick       # 2 000 due
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from common import fresh_database, ready_dispatcher, record, spaced, temporary_postgres
from sqlalchemy import Engine, event

from scheduler.config import defaults
from scheduler.db import make_engine, make_session_factory
from scheduler.sending.dispatch import Dispatcher
from scheduler.worker import copy_sent_texts

WRITTEN = re.compile(r"\b(?:INSERT INTO|(?<!FOR )UPDATE|DELETE FROM)\s+(\w+)", re.IGNORECASE)
READ = re.compile(r"\bFROM\s+(\w+)", re.IGNORECASE)


def kind(statement: str) -> str:
    """What a statement does, in a few words: the table it writes (a claim's CTE reads and
    locks, then updates), else the table it reads first, and whether it locks what it reads."""
    if written := WRITTEN.search(statement):
        verb = written.group(0).split()[0].upper()
        said = f"{verb} {written.group(1)}"
    elif read := READ.search(statement):
        said = f"SELECT {read.group(1)}"
    else:
        said = " ".join(statement.split()[:3])
    if "SKIP LOCKED" in statement.upper():
        said += " (SKIP LOCKED)"
    elif "FOR UPDATE" in statement.upper():
        said += " (FOR UPDATE)"
    return said


@dataclass
class Statements:
    """Seconds and runs of each kind of statement, while `timed` is open."""

    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    runs: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))

    @contextmanager
    def timed(self, engine: Engine) -> Iterator[None]:
        def before(connection: Any, *_: Any) -> None:
            connection.info["began"] = time.perf_counter()

        def after(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
            said = kind(statement)
            self.seconds[said] += time.perf_counter() - connection.info.pop("began")
            self.runs[said] += 1

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        try:
            yield
        finally:
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)

    def report(self, title: str, thousands: float, wall: float, cpu: float) -> None:
        """Each kind's runs and milliseconds per 1 000 follow-ups, and its share of `wall`."""

        def row(said: str, runs: str, seconds: float) -> None:
            each = seconds * 1000 / thousands
            print(f"  {said:<44} {runs:>10} {each:>9.1f} {seconds / wall:>6.1%}")

        print(f"{title}: {wall:.2f} s wall, this process's CPU {cpu:.2f} s")
        print(f"  {'statement':<44} {'runs/1 000':>10} {'ms/1 000':>9} {'share':>6}")
        for said, seconds in sorted(self.seconds.items(), key=lambda item: -item[1]):
            row(said, f"{self.runs[said] / thousands:.1f}", seconds)
        spent = sum(self.seconds.values())
        row("statements in all", "", spent)
        row("the rest: the worker's Python, commits", "", wall - spent)


def measured(work: Callable[[], int]) -> tuple[int, float, float]:
    """`work()`'s answer, wall seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    answer = work()
    return answer, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--jobs", type=int, help="follow-ups due; default 10 000 (quick 2 000)")
    args = parser.parse_args()
    jobs = args.jobs or (2_000 if args.quick else 10_000)
    config = defaults()
    size = config.worker.batch_size
    with temporary_postgres() as url:
        record(fresh_database(url), config, jobs)
        engine = make_engine(url)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")  # as job_queues.py before a run
        sessions = make_session_factory(engine, writer=True)
        dispatcher = ready_dispatcher(sessions, config, Dispatcher)
        print(f"dispatch_statements: {spaced(jobs)} due, one worker, batches of {size}")
        sending, copying = Statements(), Statements()
        with sending.timed(engine):
            summary, wall, cpu = measured(lambda: dispatcher.run_pass()["sent"])
        thousands = jobs / 1000
        sending.report(f"sent {spaced(summary)} ({spaced(summary / wall)}/s)", thousands, wall, cpu)
        with copying.timed(engine):
            copied, wall, cpu = measured(lambda: copy_sent_texts(sessions))
        copying.report(f"then copied {spaced(copied)} texts for the search", thousands, wall, cpu)
        engine.dispose()
        if summary != jobs or copied != jobs:
            raise SystemExit(f"expected {jobs} sent and copied: {summary}, {copied}")


if __name__ == "__main__":
    main()
