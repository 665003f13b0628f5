"""The worker and `dispatch --once`: the job, real processes, several at once, SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from freezegun import freeze_time
from sqlalchemy import Engine, func, select

from scheduler import worker as worker_module
from scheduler.casework.business_hours import opening_fingerprint
from scheduler.clock import utcnow
from scheduler.config import Config, parse_window
from scheduler.db import make_session_factory
from scheduler.lifecycle import FollowUpStatus
from scheduler.listening.inbound import store_sms, triage
from scheduler.listening.owner_words import add_word
from scheduler.listening.reply_store import InboundMessage
from scheduler.listening.themes import vocabulary
from scheduler.models import Case, FollowUpTally, Message, OutboxEntry
from scheduler.sending.transports import make_transports
from scheduler.settings import LiveSettings, save
from scheduler.worker import (
    CASE_PRODUCTS_JOB,
    DISPATCH_JOB,
    FIRST_ANSWERS_JOB,
    OBJECTED_JOB,
    REPLIES_JOB,
    STATISTICS_JOB,
    TALLIES_JOB,
    THEMES_JOB,
    Worker,
)
from tests.conftest import Cli
from tests.dispatching import Clock, dispatcher, setup_sales
from tests.factories import NOW, sale_input
from tests.figures_data import build
from tests.processes import (
    ANY_TIME,
    POSTVENTA,
    day1,
    due_backlog,
    free_port,
    process_config,
    twilio_sections,
    wait_for,
)
from tests.twilio_fake import FakeTwilio


def test_worker_ticks_with_coalesced_interval_jobs(engine: Engine, config: Config) -> None:
    config = config.replace(worker={"tick_seconds": 7})
    worker = Worker(engine, LiveSettings.from_engine(engine, config))
    scheduler = BackgroundScheduler()
    worker.schedule(scheduler)
    job = scheduler.get_job(DISPATCH_JOB)
    assert job.trigger.interval == timedelta(seconds=7)
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, None)
    replies = scheduler.get_job(REPLIES_JOB)  # complaints reach a person within seconds
    assert replies.trigger.interval == timedelta(seconds=5)
    assert (replies.coalesce, replies.max_instances) == (True, 1)
    statistics = scheduler.get_job(STATISTICS_JOB)  # SQLite's planner has none of its own
    assert statistics.trigger.interval == timedelta(hours=1)
    tallies = scheduler.get_job(TALLIES_JOB)
    assert tallies.trigger.interval == timedelta(minutes=10)
    sessions = setup_sales(engine, config, sale_input("S-1"))
    dispatcher(sessions, config, Clock(NOW + timedelta(days=1))).run_pass()  # rows of +1 and -1

    def rows() -> int | None:
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(FollowUpTally))

    before = rows()
    assert worker.fold_tallies() > 0 and (rows() or 0) < (before or 0)
    assert worker.fold_tallies() == 0
    themes = scheduler.get_job(THEMES_JOB)  # replies read with the owner's words as they are
    assert themes.trigger.interval == timedelta(minutes=1)
    answers = scheduler.get_job(FIRST_ANSWERS_JOB)  # the minutes of the cases answered since
    assert answers.trigger.interval == timedelta(minutes=1)
    products = scheduler.get_job(CASE_PRODUCTS_JOB)  # the cases opened lately (PostgreSQL)
    objected = scheduler.get_job(OBJECTED_JOB)  # what the triggers noted (PostgreSQL)
    if engine.dialect.name == "sqlite":
        assert products is None and objected is None
    else:
        assert products.trigger.interval == timedelta(minutes=1)
        assert objected.trigger.interval == timedelta(seconds=5)


def counted_batches(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """What each call of the worker's batch function `name` returns, in order, as it runs."""
    function = getattr(worker_module, name)
    batches: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> int:
        batches.append(function(*args, **kwargs))
        return batches[-1]

    monkeypatch.setattr(worker_module, name, counted)
    return batches


def test_the_worker_reads_again_the_themes_of_replies_read_with_other_words(
    engine: Engine, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replies read before the owner's last word about themes: all read again, a batch per
    transaction, then none."""
    monkeypatch.setattr("scheduler.worker.REREAD", 2)
    sessions = setup_sales(engine, config)
    bodies = ["llegó rota", "me cobraron dos veces", "todo bien", "el cajero fue grosero", "ok"]
    with sessions.begin() as session:
        for n, body in enumerate(bodies):
            store_sms(
                session, InboundMessage(f"SM{n:032d}", "+51900000000", "+1500", body), now=NOW
            )
    triage(sessions, config, now=NOW)  # read with the built-in words
    worker = Worker(engine, LiveSettings.from_engine(engine, config))
    assert worker.reread_themes() == 0
    with sessions.begin() as session:
        add_word(session, "product", "ok", now=NOW, actor="owner")
    batches = counted_batches(monkeypatch, "reread")
    assert worker.reread_themes() == 5 and batches == [2, 2, 1]
    assert worker.reread_themes() == 0
    with sessions() as session:
        kept = session.execute(
            select(Message.themes, Message.themes_read_with).order_by(Message.id)
        )
        assert list(kept) == [
            (themes, vocabulary(session).fingerprint)
            for themes in ("delivery breakage", "billing", "", "staff", "product")
        ]


def test_the_worker_counts_the_minutes_of_the_cases_answered_since(
    engine: Engine, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the opening hours in force, the owner's edit included: a batch per transaction,
    then none; then all again once the owner changes the hours."""
    monkeypatch.setattr("scheduler.worker.MEASURE", 2)
    sessions = make_session_factory(engine)
    with sessions() as session:
        build(session)  # four cases answered, two not
    worker = Worker(engine, LiveSettings.from_engine(engine, config))
    batches = counted_batches(monkeypatch, "measure")
    assert worker.measure_first_answers() == 4 and batches == [2, 2, 0]
    assert worker.measure_first_answers() == 0
    with sessions.begin() as session:
        mondays_only = {"cases": {"opening_hours": {"mon": "09:00-18:00"}}}
        save(session, config, mondays_only, actor="owner", now=NOW)
    worker.settings.forget()
    assert worker.measure_first_answers() == 4
    mondays = opening_fingerprint({"mon": parse_window("09:00-18:00")}, config.business.tz)
    with sessions() as session:
        kept = session.execute(
            select(Case.first_answer_minutes, Case.minutes_counted_with).order_by(Case.id)
        )
        # Each case's Monday minutes: the Friday evening one waited from Monday's opening.
        assert list(kept) == [
            (0, mondays),  # a Tuesday's case, answered on Tuesday: Monday alone is open
            (None, None),
            (0, mondays),
            (None, None),
            (0, mondays),
            (60, mondays),
        ]


def test_dispatch_once_prints_the_pass(engine: Engine, config: Config, postventa: Cli) -> None:
    setup_sales(engine, config, sale_input("S-1"), sale_input("S-2", phone="+51911111111"))
    with freeze_time(NOW + timedelta(days=1)):
        result = postventa("dispatch", "--once", "--json")
        again = postventa("dispatch", "--once")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["claimed"], summary["sent"], summary["failed"]) == (2, 2, 0)
    # What was sent is copied for the outbox's search (PostgreSQL alone keeps a copy).
    assert summary["texts_copied"] == (2 if engine.dialect.name == "postgresql" else 0)
    assert again.exit_code == 0 and again.output.startswith("recovered 0, claimed 0, sent 0")


@pytest.fixture
def idle_worker(engine: Engine, config: Config) -> Iterator[Worker]:
    """A worker with nothing to do for an hour, to run in this process: the signal handlers
    its `run_forever` installs are put back afterwards."""
    settings = LiveSettings.from_engine(engine, config.replace(worker={"tick_seconds": 3600}))
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    yield Worker(engine, settings)
    for number, handler in handlers.items():
        signal.signal(number, handler)


def test_a_sigterm_that_reaches_another_thread_still_stops_the_worker(
    idle_worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    """The kernel hands a process's signal to any of its threads; Python runs the handler in
    the main thread only when that thread next runs. A main thread blocked in one endless wait
    never ran it, and the worker had to be killed."""
    worker = idle_worker
    finished = threading.Event()

    def from_another_thread() -> None:
        time.sleep(0.5)  # the worker is waiting by then
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # to this thread, not main
        if not finished.wait(10):  # never hang the suite: wake it, and fail below
            worker.stopping.set()

    helper = threading.Thread(target=from_another_thread)
    caplog.set_level("INFO", logger="scheduler.worker")
    started = time.monotonic()
    try:
        helper.start()
        worker.run_forever()
        took = time.monotonic() - started
    finally:
        finished.set()
        helper.join()
    assert took < 5, took
    assert "SIGTERM: stopping after the batch in hand" in caplog.text


def test_the_worker_loads_what_composing_needs_then_freezes_it_before_it_starts(
    idle_worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[str] = []
    monkeypatch.setattr(worker_module, "load_composer", lambda: steps.append("load"))
    monkeypatch.setattr(worker_module, "freeze_loaded", lambda: steps.append("freeze"))
    idle_worker.stopping.set()  # it stops as soon as it has started
    idle_worker.run_forever()
    assert steps == ["load", "freeze"]


# --- real processes ----------------------------------------------------------------------------


# On PostgreSQL, test_faults.py does the same at scale (2 000 follow-ups, 20 SIGKILLs).
SQLITE_HERE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_worker_process_sends_then_stops_cleanly_on_sigterm(
    engine: Engine, config: Config, tmp_path: Path, log_format: str
) -> None:
    sessions = due_backlog(engine, config, 3)
    path = process_config(
        tmp_path, engine, worker={"tick_seconds": 3600}, logging={"format": log_format}
    )

    def stored() -> int:
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(OutboxEntry)) or 0

    worker = subprocess.Popen(
        [POSTVENTA, "--config", str(path), "worker"], stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: stored() == 3, "the first pass, which runs at start")
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0, stderr
    assert "SIGTERM: stopping after the batch in hand" in stderr and "worker stopped" in stderr
    assert "+519" not in stderr  # the customers' numbers stay out of the log
    if log_format == "json":  # every line is one event, whole
        events = [json.loads(line) for line in stderr.splitlines()]
        sent = [e["follow_up_id"] for e in events if e.get("event") == "follow_up.sent"]
        with sessions() as session:
            assert sorted(sent) == sorted(row.id for row in day1(session))
    with sessions() as session:
        assert {row.status for row in day1(session)} == {FollowUpStatus.SENT}


@pytest.mark.slow
@SQLITE_HERE
def test_several_workers_never_send_a_follow_up_twice(
    engine: Engine, config: Config, tmp_path: Path
) -> None:
    sessions = due_backlog(engine, config, 60)
    with FakeTwilio(latency=0.02) as fake:
        path = process_config(tmp_path, engine, **twilio_sections(fake, concurrency=4))
        workers = [
            subprocess.Popen(
                [POSTVENTA, "--config", str(path), "dispatch", "--once", "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        outputs = [worker.communicate(timeout=120) for worker in workers]
        posts = fake.posts()
    assert [worker.returncode for worker in workers] == [0, 0, 0], outputs
    sent = [json.loads(out)["sent"] for out, _ in outputs]
    assert sum(sent) == 60 and len([n for n in sent if n]) >= 2  # the work was shared
    per_number = Counter(post.params["To"] for post in posts)
    assert len(per_number) == 60 and set(per_number.values()) == {1}
    with sessions() as session:
        assert {row.status for row in day1(session)} == {FollowUpStatus.SENT}


@pytest.mark.slow
@SQLITE_HERE
def test_a_worker_killed_mid_pass_loses_nothing_and_sends_nothing_twice(
    engine: Engine, config: Config, tmp_path: Path
) -> None:
    sessions = due_backlog(engine, config, 40)
    with FakeTwilio(latency=0.2) as fake:
        path = process_config(tmp_path, engine, **twilio_sections(fake, concurrency=2))
        worker = subprocess.Popen(
            [POSTVENTA, "--config", str(path), "worker"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: len(fake.posts()) >= 5, "the worker to start sending")
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
        time.sleep(0.5)  # let requests already in flight reach the fake before counting
        before = len(fake.posts())
        assert before < 40  # killed mid-pass
        # A new worker after the dead one's lease ran out (its clock moved, not the test's sleep).
        restart_config = config.replace(**ANY_TIME, **twilio_sections(fake, concurrency=2))
        clock = Clock(utcnow() + timedelta(seconds=31))
        restarted = dispatcher(
            sessions,
            restart_config,
            clock,
            make_transports(restart_config, sessions, clock),
            worker_id="restarted",
        )
        summary = restarted.run_pass()
        posts = fake.posts()
    per_number = Counter(post.params["To"] for post in posts)
    assert len(per_number) == 40 and set(per_number.values()) == {1}, per_number
    assert summary["recovered"] >= 1
    with sessions() as session:
        assert {row.status for row in day1(session)} == {FollowUpStatus.SENT}


@pytest.mark.slow
def test_run_serves_and_dispatches_then_stops_on_sigterm(
    engine: Engine, config: Config, tmp_path: Path
) -> None:
    sessions = due_backlog(engine, config, 2)
    path = process_config(tmp_path, engine)
    port = free_port()
    app = subprocess.Popen(
        [POSTVENTA, "--config", str(path), "run", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stored() -> int:
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(OutboxEntry)) or 0

    try:
        wait_for(healthy, "the web app to answer")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as answer:
            assert answer.headers["Server"] == "waitress"  # not Werkzeug's development server
        wait_for(lambda: stored() == 2, "the in-process worker's first pass")
        app.send_signal(signal.SIGTERM)
        _, stderr = app.communicate(timeout=30)
    finally:
        app.kill()
    assert app.returncode == 0, stderr
    assert "scheduler shut down: no pass is running" in stderr and "web.cli: stopped" in stderr
