"""Dispatch rate: one `Dispatcher.run_pass` over follow-ups that are all due at once.

(a) the outbox transport: N sales recorded through `record_sales` (each by its own customer, so
    the minimum-gap rule postpones nothing), then the clock moves one day on, when every day-1
    thank-you is due; the figure is follow-ups sent per second of the pass.
(b) the Twilio transport (the real SDK) against the Twilio fake (in a process of its own) with
    100 ms of latency per request, no rate limit, `worker.concurrency` = 32: the latency-bound
    rate is concurrency / latency = 320 per second; the figure is the achieved rate and its
    ratio to it.

    .venv/bin/python bench/dispatch_rate.py           # (a) 20 000, (b) 1 600
    .venv/bin/python bench/dispatch_rate.py --quick   # (a) 2 000, (b) 480 (or BENCH_QUICK=1)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import multiprocessing
import os
import pstats
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path

from common import fresh_database, ready_dispatcher, record
from sqlalchemy.orm import Session, sessionmaker

from scheduler.config import Config, defaults
from scheduler.sending.courier import Job, Outcome, Result
from scheduler.sending.dispatch import Dispatcher
from tests.twilio_fake import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

OUTBOX_TARGET = 5_000  # follow-ups per second
LATENCY = 0.1  # seconds per Twilio request
RATIO_TARGET = 0.8


class TimedDispatcher(Dispatcher):
    """The real dispatcher, with the wall time of each phase of a pass added up."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.phases: defaultdict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        send = self.courier.deliver

        def timed_deliver(job: Job, start_by: datetime | None = None) -> Outcome:
            began = time.perf_counter()
            try:
                return send(job, start_by)
            finally:
                with self._lock:
                    self.phases["deliver, summed over threads"] += time.perf_counter() - began

        self.courier.deliver = timed_deliver  # type: ignore[method-assign]

    def claim(self) -> list[int]:
        began = time.perf_counter()
        try:
            return super().claim()
        finally:
            self.phases["claim"] += time.perf_counter() - began

    def prepare(
        self, ids: list[int], summary: Counter[str], stop: threading.Event | None = None
    ) -> list[Job]:
        began = time.perf_counter()
        try:
            return super().prepare(ids, summary, stop)
        finally:
            self.phases["prepare (compose, re-check, write; the outbox: send, record)"] += (
                time.perf_counter() - began
            )

    def deliver_batch(self, jobs: list[Job], stop: threading.Event | None = None) -> list[Outcome]:
        began = time.perf_counter()
        try:
            return super().deliver_batch(jobs, stop)
        finally:
            self.phases["hand over and send (wall)"] += time.perf_counter() - began

    def record(
        self, outcomes: Iterable[Outcome], summary: Counter[str], recorded: Iterable[Result] = ()
    ) -> None:
        began = time.perf_counter()
        try:
            super().record(outcomes, summary, recorded)
        finally:
            self.phases["record results"] += time.perf_counter() - began


def database(tmp: str, name: str, sales: int, config: Config) -> sessionmaker[Session]:
    """A fresh SQLite database with the default cadence and `sales` sales recorded at NOW."""
    sessions = fresh_database(Path(tmp) / name)
    record(sessions, config, sales)
    return sessions


def run(
    sessions: sessionmaker[Session], config: Config, profiler: cProfile.Profile | None = None
) -> tuple[dict[str, int], float, dict[str, float]]:
    dispatcher = ready_dispatcher(sessions, config, TimedDispatcher)
    began = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    summary = dispatcher.run_pass()
    if profiler is not None:
        profiler.disable()
    return summary, time.perf_counter() - began, dispatcher.phases


def print_phases(phases: dict[str, float], seconds: float) -> None:
    print("    where the pass's time went (wall seconds; sends overlap in the pool):")
    for phase, spent in phases.items():
        share = f"{100 * spent / seconds:5.1f}%" if "summed" not in phase else "   --"
        print(f"      {phase:<46} {spent:7.2f} s {share}")


def shown(summary: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in summary.items() if value)


def outbox(tmp: str, count: int, profile_count: int) -> None:
    config = defaults()
    sessions = database(tmp, "outbox.db", count, config)
    summary, seconds, phases = run(sessions, config)
    rate = summary["sent"] / seconds
    worker = config.worker
    print(
        f"(a) outbox transport, SQLite, batch_size {worker.batch_size}, "
        f"concurrency {worker.concurrency}"
    )
    print(f"    due follow-ups: {count}; pass: {shown(summary)}")
    print(f"    pass took {seconds:.2f} s")
    print(f"    dispatched/s: {rate:.0f} (target >= {OUTBOX_TARGET})")
    print(f"    target met: {'yes' if rate >= OUTBOX_TARGET else 'no'}")
    print_phases(phases, seconds)
    if rate < OUTBOX_TARGET and profile_count:
        profile(tmp, profile_count, config)


def profile(tmp: str, count: int, config: Config) -> None:
    """cProfile of the pass's main thread (claim, prepare, record) on a smaller pass."""
    sessions = database(tmp, "outbox-profile.db", count, config)
    profiler = cProfile.Profile()
    summary, seconds, _ = run(sessions, config, profiler)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(15)
    print(
        f"--- cProfile of a {count}-follow-up pass, main thread only, top 15 ---", file=sys.stderr
    )
    print(text.getvalue(), file=sys.stderr)
    print(f"    (cProfile of a {count}-follow-up pass, main thread, is on stderr)")


def serve_fake(latency: float, pipe: Connection) -> None:
    """The Twilio fake in a process of its own, so that its request handling does not take
    turns with the dispatcher's threads at this process's interpreter lock: says its URL, then
    how many messages it was asked to create when asked."""
    with FakeTwilio(latency=latency) as fake:
        pipe.send(fake.url)
        pipe.recv()
        pipe.send(len(fake.posts()))


def twilio(tmp: str, count: int, concurrency: int) -> None:
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=serve_fake, args=(LATENCY, theirs), daemon=True
    )
    server.start()
    try:
        url = ours.recv()
        config = defaults().replace(
            sms={"transport": "twilio"},
            twilio={
                "account_sid": ACCOUNT_SID,
                "auth_token": AUTH_TOKEN,
                "from_number": "+15005550006",
                "api_base_url": url,
                "max_per_second": 0,
            },
            worker={"concurrency": concurrency},
        )
        sessions = database(tmp, "twilio.db", count, config)
        summary, seconds, phases = run(sessions, config)
        ours.send("count")
        posts = ours.recv()
    finally:
        server.terminate()
    rate = summary["sent"] / seconds
    bound = concurrency / LATENCY
    ratio = rate / bound
    print(
        f"(b) Twilio transport against the fake, {LATENCY * 1000:.0f} ms per request, "
        f"concurrency {concurrency}, batch_size {config.worker.batch_size}, no rate limit"
    )
    print(f"    due follow-ups: {count}; pass: {shown(summary)}; POSTs received {posts}")
    print(f"    pass took {seconds:.2f} s")
    print(f"    dispatched/s: {rate:.1f}; latency-bound rate {bound:.0f}/s")
    print(f"    ratio to the latency bound: {ratio:.1%} (target >= {RATIO_TARGET:.0%})")
    print(f"    target met: {'yes' if ratio >= RATIO_TARGET else 'no'}")
    print_phases(phases, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.environ.get("BENCH_QUICK")))
    parser.add_argument("--outbox", type=int, help="due follow-ups for (a); default 20 000")
    parser.add_argument("--twilio", type=int, help="due follow-ups for (b); default 1 600")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", type=int, default=1_000, help="pass size to profile; 0: none")
    args = parser.parse_args()
    outbox_count = args.outbox or (2_000 if args.quick else 20_000)
    twilio_count = args.twilio or (480 if args.quick else 1_600)
    print("dispatch_rate: one run_pass, SQLite, every due follow-up a day-1 thank-you (SMS)")
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp:
        outbox(tmp, outbox_count, args.profile)
        twilio(tmp, twilio_count, args.concurrency)


if __name__ == "__main__":
    main()
