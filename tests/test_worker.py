"""The worker and `dispatch --once`: the job, real processes, several at once, SIGKILL."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from freezegun import freeze_time
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.clock import utcnow
from scheduler.config import WEEKDAYS, Config
from scheduler.lifecycle import FollowUpStatus
from scheduler.models import CadenceStep, FollowUp, OutboxEntry
from scheduler.sales import record_sales
from scheduler.settings import LiveSettings
from scheduler.transports import make_transports
from scheduler.worker import DISPATCH_JOB, REPLIES_JOB, Worker
from tests.conftest import Cli
from tests.dispatching import Clock, dispatcher, setup_sales
from tests.factories import NOW, sale_input
from tests.twilio_fake import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

POSTVENTA = str(Path(sys.executable).parent / "postventa")


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


def test_dispatch_once_prints_the_pass(engine: Engine, config: Config, postventa: Cli) -> None:
    setup_sales(engine, config, sale_input("S-1"), sale_input("S-2", phone="+51911111111"))
    with freeze_time(NOW + timedelta(days=1)):
        result = postventa("dispatch", "--once", "--json")
        again = postventa("dispatch", "--once")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["claimed"], summary["sent"], summary["failed"]) == (2, 2, 0)
    assert again.exit_code == 0 and again.output.startswith("recovered 0, claimed 0, sent 0")


# --- real processes ----------------------------------------------------------------------------


# Any hour, any day, no gap between messages: what is due goes now, whenever the test runs.
ANY_TIME: dict[str, dict[str, object]] = {
    "business": {"send_window": "00:00-24:00", "send_days": list(WEEKDAYS)},
    "cadences": {"min_gap_hours": 0},
}


# On PostgreSQL, tests/test_faults.py does the same at scale (2 000 follow-ups, 20 SIGKILLs).
SQLITE_HERE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def process_config(tmp_path: Path, engine: Engine, **sections: dict[str, object]) -> Path:
    """A config file for worker processes, at ANY_TIME (not named as the tests' sessions)."""
    url = engine.url.set(query={}).render_as_string(hide_password=False)
    lines = [f'[database]\nurl = "{url}"\n']
    for name, values in {**ANY_TIME, **sections}.items():
        lines.append(f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    path = tmp_path / "worker.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def twilio_sections(fake: FakeTwilio, concurrency: int) -> dict[str, dict[str, object]]:
    return {
        "sms": {"transport": "twilio"},
        "twilio": {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "from_number": "+15005550006",
            "api_base_url": fake.url,
            "max_per_second": 0,
        },
        "worker": {"concurrency": concurrency, "batch_size": 10, "lease_seconds": 30},
    }


def due_backlog(engine: Engine, config: Config, count: int) -> sessionmaker[Session]:
    """`count` customers whose day-1 thank-you is due now (real time: processes can't be frozen)."""
    sold = utcnow() - timedelta(days=1, minutes=5)
    sales = [
        sale_input(f"S-{n}", phone=f"+519{n:08d}", sold_at=sold, customer_name=f"Cliente {n}")
        for n in range(count)
    ]
    config, now = config.replace(**ANY_TIME), sold + timedelta(minutes=1)
    sessions = setup_sales(engine, config, now=now)
    with sessions.begin() as session:  # as an import records them: in one batch
        record_sales(session, sales, config=config, now=now, actor="test")
    return sessions


def day1(session: Session) -> list[FollowUp]:
    return list(
        session.scalars(select(FollowUp).join(CadenceStep).where(CadenceStep.key == "day1-thanks"))
    )


def wait_for(condition: object, what: str, seconds: float = 60) -> None:
    """Poll for something another process does (not a schedule: it happens as fast as it can)."""
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_worker_process_sends_then_stops_cleanly_on_sigterm(
    engine: Engine, config: Config, tmp_path: Path
) -> None:
    sessions = due_backlog(engine, config, 3)
    path = process_config(tmp_path, engine, worker={"tick_seconds": 3600})

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
            sessions, restart_config, clock,
            make_transports(restart_config, sessions, clock), worker_id="restarted",
        )  # fmt: skip
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
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
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
        wait_for(lambda: stored() == 2, "the in-process worker's first pass")
        app.send_signal(signal.SIGTERM)
        _, stderr = app.communicate(timeout=30)
    finally:
        app.kill()
    assert app.returncode == 0, stderr
    assert "scheduler shut down: no pass is running" in stderr and "web.cli: stopped" in stderr
