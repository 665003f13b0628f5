"""A worker that stops is seen: heartbeats, the backlog's age, the owners' warning on every
page, the workers page, and `/healthz?deep=1` for a load balancer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from scheduler import heartbeats
from scheduler.config import Config
from scheduler.lifecycle import FollowUpStatus
from scheduler.models import FollowUp, User, WorkerHeartbeat
from scheduler.sending.pauses import pause
from scheduler.settings import LiveSettings
from scheduler.worker import Worker, worker_id
from tests.browsing import log_in
from tests.conftest import OWNER
from tests.dispatching import DAY1, setup_sales
from tests.factories import NOW, sale_input

TICK = 30


def beat(session: Session, write: Callable[..., None], name: str = "w-1", **values: object) -> None:
    write(session, name, **values)
    session.commit()


def test_a_worker_passing_within_two_ticks_is_well_and_one_silent_longer_is_late(
    session: Session,
) -> None:
    assert heartbeats.health(session, now=NOW).workers_late  # none has ever run
    beat(session, heartbeats.started, tick_seconds=TICK, now=NOW)
    beat(session, heartbeats.pass_ended, now=NOW, seconds=0.5, sent=3)
    well = heartbeats.health(session, now=NOW + timedelta(seconds=2 * TICK))
    assert well.ok and well.workers_passing == 1 and well.last_pass_at == NOW
    late = heartbeats.health(session, now=NOW + timedelta(seconds=2 * TICK + 1))
    assert late.workers_late and not late.ok and late.last_pass_at == NOW


def test_a_long_pass_is_well_while_its_worker_is_alive(session: Session) -> None:
    beat(session, heartbeats.started, tick_seconds=TICK, now=NOW)
    beat(session, heartbeats.pass_began, now=NOW)
    beat(session, heartbeats.alive, now=NOW + timedelta(minutes=10))  # the replies job
    assert not heartbeats.health(session, now=NOW + timedelta(minutes=10, seconds=5)).workers_late
    (state,) = heartbeats.workers(session, now=NOW + timedelta(minutes=10))
    assert state.in_pass_since == NOW and state.passing
    assert heartbeats.health(session, now=NOW + timedelta(minutes=12)).workers_late  # gone


def test_a_stopped_worker_is_not_sending_and_a_forgotten_one_leaves_the_list(
    session: Session,
) -> None:
    beat(session, heartbeats.started, "old", tick_seconds=TICK, now=NOW - timedelta(days=8))
    beat(session, heartbeats.started, tick_seconds=TICK, now=NOW)
    beat(session, heartbeats.pass_ended, now=NOW, seconds=0.1, sent=0)
    beat(session, heartbeats.stopped, now=NOW + timedelta(seconds=1))
    (state,) = heartbeats.workers(session, now=NOW + timedelta(seconds=2))
    assert state.worker_id == "w-1" and state.stopped_at is not None and not state.passing
    beat(session, heartbeats.started, "w-2", tick_seconds=TICK, now=NOW + timedelta(seconds=3))
    assert session.scalars(select(WorkerHeartbeat.worker_id)).all() == ["w-1", "w-2"]


def test_a_follow_up_due_more_than_five_minutes_is_late_unless_paused(
    engine: Engine, config: Config, session: Session
) -> None:
    setup_sales(engine, config, sale_input())
    beat(session, heartbeats.started, tick_seconds=TICK, now=DAY1)
    due = session.scalars(select(FollowUp).order_by(FollowUp.due_at)).first()
    assert due is not None and due.status is FollowUpStatus.SCHEDULED
    at = due.due_at + heartbeats.LONGEST_WAIT
    beat(session, heartbeats.pass_ended, now=at, seconds=0.1, sent=0)
    assert heartbeats.health(session, now=at).ok  # five minutes is not yet late
    late = heartbeats.health(session, now=at + timedelta(seconds=1))
    assert late.backlog_late and not late.workers_late and late.oldest_due_at == due.due_at
    assert heartbeats.backlog(session, now=at) == 1
    pause(session, None, reason="inventario", actor="user:1", now=at)
    session.commit()
    assert heartbeats.health(session, now=at + timedelta(seconds=1)).ok  # held on purpose
    assert heartbeats.backlog(session, now=at) == 0


@pytest.fixture
def running(engine: Engine, config: Config) -> Iterator[Worker]:
    setup_sales(engine, config, sale_input())
    yield Worker(engine, LiveSettings.from_engine(engine, config))


def test_the_worker_writes_its_start_passes_signs_of_life_and_stop(
    running: Worker, session: Session
) -> None:
    with freeze_time(DAY1):
        running._started()
        running.tick()
    with freeze_time(DAY1 + timedelta(seconds=5)):
        running.read()

    def row() -> WorkerHeartbeat:
        session.rollback()  # a new transaction sees the worker's latest writes
        return session.get_one(WorkerHeartbeat, worker_id())

    mine = row()
    assert (mine.started_at, mine.last_pass_at, mine.pass_started_at) == (DAY1, DAY1, None)
    assert mine.last_pass_sent == 1 and mine.last_pass_seconds is not None
    assert mine.beat_at == DAY1 + timedelta(seconds=5)
    assert mine.tick_seconds == running.config.worker.tick_seconds
    with freeze_time(DAY1 + timedelta(seconds=6)):
        running.stop(BackgroundScheduler())
    assert row().stopped_at == DAY1 + timedelta(seconds=6)


def deep(client: FlaskClient) -> tuple[int, dict[str, object]]:
    answer = client.get("/healthz?deep=1")
    return answer.status_code, answer.get_json()


def test_healthz_deep_fails_without_a_worker_and_passes_with_one(
    client: FlaskClient, session: Session
) -> None:
    with freeze_time(NOW):
        assert client.get("/healthz").status_code == 200  # the shallow check: the database
        status, said = deep(client)
        assert status == 503 and said["worker"] == "late" and said["last_pass_at"] is None
        beat(session, heartbeats.started, tick_seconds=TICK, now=NOW)
        beat(session, heartbeats.pass_ended, now=NOW, seconds=0.2, sent=0)
        status, said = deep(client)
        assert status == 200 and said == {
            "status": "ok",
            "database": "ok",
            "worker": "ok",
            "workers_passing": 1,
            "last_pass_at": NOW.isoformat(),
            "backlog": "ok",
            "oldest_due_at": None,
            "oldest_wait_seconds": None,
        }
    with freeze_time(NOW + timedelta(seconds=2 * TICK + 1)):
        assert deep(client)[0] == 503


def test_healthz_deep_fails_when_a_follow_up_waits_while_the_worker_passes(
    engine: Engine, config: Config, client: FlaskClient, session: Session
) -> None:
    setup_sales(engine, config, sale_input())
    session.execute(update(FollowUp).values(due_at=NOW - timedelta(minutes=7)))
    beat(session, heartbeats.started, tick_seconds=TICK, now=NOW)
    beat(session, heartbeats.pass_ended, now=NOW, seconds=0.2, sent=0)
    with freeze_time(NOW):
        status, said = deep(client)
    assert status == 503 and (said["worker"], said["backlog"]) == ("ok", "late")
    assert said["oldest_wait_seconds"] == 7 * 60


@pytest.fixture
def at_now(session: Session) -> Iterator[datetime]:
    """Frozen before the browsers log in (a session cookie from the real clock would look
    issued in the future)."""
    with freeze_time(NOW):
        yield NOW


def test_owners_are_warned_on_every_page_until_a_worker_passes(
    at_now: datetime, session: Session, owner_client: FlaskClient, staff_client: FlaskClient
) -> None:
    for page in ("/", "/customers", "/admin/settings"):
        text = owner_client.get(page).get_data(as_text=True)
        assert 'id="worker-warning"' in text and "No worker is running" in text, page
    assert 'id="worker-warning"' not in staff_client.get("/customers").get_data(as_text=True)
    beat(session, heartbeats.started, tick_seconds=TICK, now=at_now)
    beat(session, heartbeats.pass_ended, now=at_now, seconds=1.5, sent=12)
    page = owner_client.get("/admin/workers").get_data(as_text=True)
    assert 'id="worker-warning"' not in page
    assert "<code>w-1</code>" in page and "1.5 s" in page and ">12<" in page
    assert staff_client.get("/admin/workers").status_code == 403


def test_the_warning_says_since_when_nobody_has_passed(
    session: Session, app: Flask, owner: User
) -> None:
    beat(session, heartbeats.started, tick_seconds=TICK, now=NOW)
    beat(session, heartbeats.pass_ended, now=NOW, seconds=1.5, sent=12)
    with freeze_time(NOW + timedelta(minutes=5)):
        browser = app.test_client()
        assert log_in(browser, *OWNER).status_code == 302
        text = browser.get("/customers").get_data(as_text=True)
    assert "No worker has finished a pass since" in text
