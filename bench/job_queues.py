"""Postventa's dispatch against two PostgreSQL job queues, procrastinate and pg-boss, in one run.

Each system gets N jobs due at once in its own temporary database on the PostgreSQL of
127.0.0.1:5432 (dropped afterwards), worked off by 1, then 2, worker processes:
- Postventa: N sales recorded through `record_sales`; one day on (DAY1) their N day-1
  thank-yous are due, outbox transport. Each worker process builds a `Dispatcher` as the worker
  does (`make_transports`, its own engine) and calls `run_pass` until a pass claims nothing.
  Checked after each run: exactly N outbox rows, one per follow-up, and all N follow-ups sent;
  then the N texts are copied for the outbox's search, as the worker's job does after the
  sends, not timed in the rate (its seconds are printed).
- procrastinate (its own virtualenv under ~/.cache/postventa-bench, from
  bench/procrastinate_app/requirements.txt): N jobs of an async task that INSERTs one row,
  deferred in one batch; each worker process runs `run_worker_async(wait=False)`, which stops
  when a fetch finds no job, one job at a time (procrastinate's default concurrency; see
  `--procrastinate-concurrency`).
- pg-boss 10 (node; bench/pgboss/package.json installed under ~/.cache/postventa-bench): N
  jobs inserted in bulk; each worker process fetches batches of 100, INSERTs one row per job
  and completes the batch in the same transaction, until a fetch comes back empty.
Both queues are checked the same way: every job succeeded and wrote its row, once.
Setting up (migrations, sales, deferring, then VACUUM ANALYZE) is not timed. The workers start,
connect, say they are ready, and are told to go at once; the rate is the jobs done over the time
from that go to the moment the last worker found nothing left. Systems alternate (Postventa 1,
procrastinate 1, pg-boss 1, Postventa 2, ...), three rounds; min/median/max per system and
worker count. Targets (medians, 2 workers): Postventa >= 3 000/s, ahead of pg-boss, and at
least 10 times procrastinate.

    .venv/bin/python bench/job_queues.py                     # 10 000 jobs, 3 rounds
    .venv/bin/python bench/job_queues.py --quick             # 2 000 jobs, 1 round
    .venv/bin/python bench/job_queues.py --only postventa    # one system (repeatable)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from common import PG_ADMIN, fresh_database, ready_dispatcher, record, temporary_postgres
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from scheduler.config import defaults
from scheduler.db import make_engine, make_session_factory
from scheduler.lifecycle import FollowUpStatus
from scheduler.models import FollowUp, OutboxEntry
from scheduler.sending.dispatch import Dispatcher
from scheduler.worker import copy_sent_texts

BENCH = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "postventa-bench"
WORKERS = (1, 2)
RUN_TIMEOUT = 900  # seconds for one run's workers, however slow
RATE_TARGET = 3_000  # Postventa, 2 workers, jobs per second
PGBOSS_TARGET = 1.0  # Postventa / pg-boss: ahead of it
PROCRASTINATE_TARGET = 10.0  # Postventa / procrastinate
DONE_TABLE = "CREATE TABLE bench_done (job integer NOT NULL)"  # the queues' tasks write here


@dataclass(frozen=True)
class System:
    """One contender: how its N jobs are made ready (untimed), how one worker process is
    started, and what is checked afterwards (whether it held, and what to print)."""

    name: str
    prepare: Callable[[str, int], None]  # (SQLAlchemy URL, jobs)
    worker: Callable[[str, int], list[str]]  # (SQLAlchemy URL, worker number): its command
    check: Callable[[str, int], tuple[bool, str]]


@dataclass(frozen=True)
class Run:
    system: str
    workers: int
    jobs: int
    seconds: float
    per_worker: list[int]
    exact: bool
    checked: str

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds


def libpq(url: str) -> str:
    """The URL for psycopg and node's pg: SQLAlchemy's without its driver."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Run one statement of ours on its own; the rows it returns, if any."""
    with psycopg.connect(libpq(url), autocommit=True) as connection:
        cursor = connection.execute(sql)
        return cursor.fetchall() if cursor.description else []


# --- Postventa --------------------------------------------------------------------------------


def postventa_prepare(url: str, jobs: int) -> None:
    sessions = fresh_database(url)
    record(sessions, defaults(), jobs)
    sessions.kw["bind"].dispose()


def postventa_worker(url: str, number: int) -> list[str]:
    return [sys.executable, __file__, "--worker", url, "--name", f"bench-{number}"]


def postventa_check(url: str, jobs: int) -> tuple[bool, str]:
    """Exactly-once: N outbox rows, each for a different follow-up, and as many sent. Then
    the texts sent are copied for the outbox's search, as the worker's job does after the
    sends (`sent_texts`; not in the rate): its time is printed."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            stored = session.scalar(select(func.count()).select_from(OutboxEntry))
            references = session.scalar(select(func.count(distinct(OutboxEntry.reference))))
            sent = session.scalar(
                select(func.count()).where(FollowUp.status == FollowUpStatus.SENT)
            )
        began = time.perf_counter()
        copied = copy_sent_texts(make_session_factory(engine))
        copying = time.perf_counter() - began
    finally:
        engine.dispose()
    exact = stored == references == sent == copied == jobs
    return exact, (
        f"{stored} outbox rows for {references} follow-ups, {sent} follow-ups sent; "
        f"{copied} texts copied for the search after, in {copying:.2f} s"
    )


def serve_postventa(url: str, name: str) -> None:
    """One worker process: `run_pass` at DAY1 until a pass claims nothing; prints what it sent
    and when its last pass that claimed anything ended (it ends on finding nothing left)."""
    engine = make_engine(url)
    sessions = make_session_factory(engine, writer=True)
    with engine.connect():  # connected before the start, as the queues' workers are
        pass
    dispatcher = ready_dispatcher(sessions, defaults(), Dispatcher, name)
    print("ready", flush=True)
    sys.stdin.readline()
    sent, ended = 0, time.monotonic()
    while (summary := dispatcher.run_pass())["claimed"]:
        sent, ended = sent + summary["sent"], time.monotonic()
    engine.dispose()
    print(json.dumps({"done": sent, "ended": ended}), flush=True)


# --- the queues -------------------------------------------------------------------------------


def queue_check(url: str, jobs: int, states: str) -> tuple[bool, str]:
    """Every job in a final state named by the query `states` (state, count), and one row
    written per job."""
    finals = dict(rows(url, states))
    written, distinct_jobs = rows(url, "SELECT count(*), count(DISTINCT job) FROM bench_done")[0]
    exact = written == distinct_jobs == jobs and list(finals.values()) == [jobs]
    shown = ", ".join(f"{count} {state}" for state, count in finals.items())
    return exact, f"jobs {shown}; {written} rows written for {distinct_jobs} jobs"


def stale(recipe: Path, copy: Path) -> bool:
    """Whether what was installed from `recipe` (`copy` kept beside it) is missing or older."""
    return not copy.exists() or copy.read_text() != recipe.read_text()


def procrastinate(concurrency: int) -> tuple[System, str]:
    """procrastinate, installed in its own virtualenv first if need be; and its version."""
    venv, recipe = CACHE / "procrastinate", BENCH / "procrastinate_app" / "requirements.txt"
    python, runner = venv / "bin" / "python", BENCH / "procrastinate_app" / "runner.py"
    if stale(recipe, venv / "requirements.txt"):
        print(f"(installing procrastinate into {venv})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(recipe)], check=True)
        shutil.copyfile(recipe, venv / "requirements.txt")
    version = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('procrastinate'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()

    def prepare(url: str, jobs: int) -> None:
        rows(url, DONE_TABLE)
        subprocess.run([python, runner, "defer", libpq(url), str(jobs)], check=True)

    system = System(
        "procrastinate",
        prepare,
        lambda url, _: [str(python), str(runner), "work", libpq(url), str(concurrency)],
        lambda url, jobs: queue_check(
            url, jobs, "SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1"
        ),
    )
    return system, version


def pgboss() -> tuple[System, str]:
    """pg-boss, installed with npm first if need be; and its version."""
    where, recipe = CACHE / "pgboss", BENCH / "pgboss" / "package.json"
    runner = BENCH / "pgboss" / "runner.js"
    if not shutil.which("npm") or not shutil.which("node"):
        raise SystemExit("pg-boss needs node and npm (Debian: apt-get install nodejs npm)")
    if stale(recipe, where / "package.json"):
        print(f"(installing pg-boss into {where})", flush=True)
        where.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(recipe, where / "package.json")
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=where, check=True
        )
    modules = where / "node_modules"
    version = json.loads((modules / "pg-boss" / "package.json").read_text())["version"]

    def node(*arguments: str) -> list[str]:
        return ["env", f"NODE_PATH={modules}", "node", str(runner), *arguments]

    def prepare(url: str, jobs: int) -> None:
        rows(url, DONE_TABLE)
        subprocess.run(node("send", libpq(url), str(jobs)), check=True)

    system = System(
        "pg-boss",
        prepare,
        lambda url, _: node("work", libpq(url)),
        lambda url, jobs: queue_check(
            url,
            jobs,
            "SELECT state::text, count(*) FROM pgboss.job WHERE name = 'store' GROUP BY 1",
        ),
    )
    return system, version


# --- the runs ---------------------------------------------------------------------------------


def race(commands: list[list[str]]) -> tuple[list[int], float]:
    """Start the worker processes, wait until each is ready, tell them all to go; the jobs each
    did and the seconds from the go to the last one's end (CLOCK_MONOTONIC in every process)."""
    workers = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for command in commands
    ]
    try:
        for command, worker in zip(commands, workers, strict=True):
            if worker.stdout is None or worker.stdout.readline() != "ready\n":
                raise SystemExit(f"a worker process did not start: {' '.join(command)}")
        began = time.monotonic()
        for worker in workers:
            if worker.stdin is not None:
                worker.stdin.write("go\n")
                worker.stdin.flush()
        # Nothing follows "ready" before the go: communicate() reads the rest from the pipe.
        reports = [json.loads(worker.communicate(timeout=RUN_TIMEOUT)[0]) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    if any(worker.returncode for worker in workers):
        raise SystemExit("a worker process failed (its traceback is above)")
    return [report["done"] for report in reports], max(r["ended"] for r in reports) - began


def run(system: System, workers: int, jobs: int) -> Run:
    with temporary_postgres() as url:
        system.prepare(url, jobs)
        rows(url, "VACUUM ANALYZE")
        per_worker, seconds = race([system.worker(url, n) for n in range(workers)])
        exact, checked = system.check(url, jobs)
    result = Run(system.name, workers, sum(per_worker), seconds, per_worker, exact, checked)
    split = " + ".join(str(done) for done in per_worker)
    print(
        f"  {system.name:<13} {workers} worker{'s' if workers > 1 else ' '}: "
        f"{result.jobs} in {seconds:6.2f} s = {result.rate:6.0f}/s ({split}); "
        f"exactly-once: {'yes' if exact else 'NO'} ({checked})",
        flush=True,
    )
    return result


def rates(runs: list[Run], system: str, workers: int) -> list[float]:
    return [r.rate for r in runs if r.system == system and r.workers == workers]


def report(runs: list[Run], names: list[str]) -> None:
    print("jobs per second, over the rounds:")
    print(f"  {'system':<13} {'workers':>7} {'min':>7} {'median':>7} {'max':>7}")
    for name in names:
        for workers in WORKERS:
            seen = rates(runs, name, workers)
            low, mid, high = min(seen), statistics.median(seen), max(seen)
            print(f"  {name:<13} {workers:>7} {low:>7.0f} {mid:>7.0f} {high:>7.0f}")
    if "Postventa" not in names:
        return
    ours = statistics.median(rates(runs, "Postventa", 2))
    met = ours >= RATE_TARGET
    print(f"Postventa, 2 workers, median: {ours:.0f}/s (target >= {RATE_TARGET})", end="")
    print(f"; target met: {'yes' if met else 'no'}")
    for name, target in (("pg-boss", PGBOSS_TARGET), ("procrastinate", PROCRASTINATE_TARGET)):
        if name in names:
            ratio = ours / statistics.median(rates(runs, name, 2))
            print(
                f"Postventa / {name}, 2 workers, medians: {ratio:.2f}x (target >= {target:g})",
                end="",
            )
            print(f"; target met: {'yes' if ratio >= target else 'no'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--jobs", type=int, help="jobs per run; default 10 000 (quick 2 000)")
    parser.add_argument("--rounds", type=int, help="rounds; default 3 (quick 1)")
    parser.add_argument(
        "--only", action="append", choices=["postventa", "procrastinate", "pg-boss"]
    )
    parser.add_argument(
        "--procrastinate-concurrency",
        type=int,
        default=1,
        help="procrastinate's jobs in flight per worker process (its default: 1)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # a Postventa worker process: URL
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        serve_postventa(args.worker, args.name)
        return
    jobs = args.jobs or (2_000 if args.quick else 10_000)
    rounds = args.rounds or (1 if args.quick else 3)
    only = set(args.only or ["postventa", "procrastinate", "pg-boss"])
    server = rows(PG_ADMIN, "SHOW server_version")[0][0]
    systems, versions = [], [f"PostgreSQL {server}"]
    if "postventa" in only:
        systems.append(System("Postventa", postventa_prepare, postventa_worker, postventa_check))
    if "procrastinate" in only:
        system, version = procrastinate(args.procrastinate_concurrency)
        systems.append(system)
        versions.append(f"procrastinate {version} (concurrency {args.procrastinate_concurrency})")
    if "pg-boss" in only:
        system, version = pgboss()
        systems.append(system)
        versions.append(f"pg-boss {version}")
    rounds_said = f"{rounds} round{'s' if rounds > 1 else ''}"
    print(f"job_queues: {jobs} jobs due at once, 1 and 2 worker processes, {rounds_said}")
    print(f"  ({', '.join(versions)}, 127.0.0.1:5432, a fresh database per run)", flush=True)
    began = time.monotonic()
    runs = []
    for number in range(1, rounds + 1):
        print(f"round {number}:")
        runs += [run(system, workers, jobs) for workers in WORKERS for system in systems]
    report(runs, [system.name for system in systems])
    print(f"(the whole benchmark took {time.monotonic() - began:.0f} s)")
    if not all(r.exact for r in runs):
        raise SystemExit("a run did not do every job exactly once (see above)")


if __name__ == "__main__":
    main()
