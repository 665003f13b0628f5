"""A STOP is never lost, whatever a template does: renders are bounded in time and size, no
lock is held while one runs, and the webhook stores a reply before it acts on it."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.config import Config
from scheduler.defaults import install_defaults
from scheduler.lifecycle import Channel, FollowUpStatus
from scheduler.listening.inbound import store_sms, triage
from scheduler.listening.reply_store import InboundMessage
from scheduler.models import Customer, Message, MessageTemplate
from scheduler.sending.sandbox import RENDER_SECONDS, RenderError, render_part
from tests.browsing import csrf_token
from tests.dispatching import Clock, dispatcher, follow_up, setup_sales
from tests.factories import sale_input
from tests.processes import POSTVENTA, day1, due_backlog, process_config, wait_for
from tests.replying import DAY1, ROSA, config, post, reply, sms  # noqa: F401 - fixture

__all__ = ["config"]
# Ten thousand million turns of an empty loop: the preview's sample customer never gets here.
SLOW = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}Hola"


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (SLOW, f"takes more than {RENDER_SECONDS:g} s to render"),
        ("{{ 'x' * 1000000000 }}", "repeats something to more than"),
        ("{{ 10 ** 100000000 }}", "an exponent above"),
        ("{% for i in range(100000) %}{{ i }}{% endfor %}", "prints more than"),
    ],
)
def test_a_render_is_stopped_in_time_and_size(source: str, words: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError, match=words):
        render_part(source, {}, escaped=False, label="template 'thanks' (sms/es) body")
    assert time.monotonic() - started < RENDER_SECONDS + 1


def test_lipsum_prints_a_little_not_a_book() -> None:
    text = render_part("{{ lipsum(1000000) }}", {}, escaped=False, label="preview")
    assert 0 < len(text) < 20 * 100 * 15


def test_a_render_that_ends_in_time_leaves_nothing_behind() -> None:
    for _ in range(50):  # the watchdog is cancelled, never fires into later code
        assert render_part("Hola {{ n }}", {"n": 1}, escaped=False, label="x") == "Hola 1"
    time.sleep(0.05)


def test_renders_share_one_watchdog_and_each_is_watched_after_a_slow_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pass renders thousands of messages: no thread is started for each, and a render in
    a thread whose last render was stopped is stopped in time too."""
    render_part("Hola", {}, escaped=False, label="x")  # the watchdog is running
    started: list[threading.Thread] = []
    real_start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    for n in range(200):
        assert render_part("Hola {{ n }}", {"n": n}, escaped=False, label="x") == f"Hola {n}"
    assert started == []
    for _ in range(2):
        began = time.monotonic()
        with pytest.raises(RenderError, match="takes more than"):
            render_part(SLOW, {}, escaped=False, label="x")
        assert time.monotonic() - began < RENDER_SECONDS + 1


@pytest.fixture
def slow_thanks(engine: Engine, config: Config) -> Iterator[sessionmaker[Session]]:
    """Rosa's and Luis's day-1 thanks are due; the owner saved a template that loops for ever
    for Rosa only (the preview's sample customer is not called Rosa)."""
    sessions = setup_sales(
        engine,
        config,
        sale_input("S-1"),
        sale_input("S-2", phone="+51911222333", customer_name="Luis Rojas"),
    )
    body = "{% if customer.name.startswith('Rosa') %}" + SLOW + "{% endif %}Gracias!"
    with sessions.begin() as session:
        session.execute(
            update(MessageTemplate)
            .where(MessageTemplate.name == "thanks", MessageTemplate.channel == Channel.SMS)
            .values(body=body)
        )
    yield sessions


def test_a_slow_template_fails_its_own_follow_up_and_the_rest_go(
    slow_thanks: sessionmaker[Session], config: Config
) -> None:
    summary = dispatcher(slow_thanks, config, Clock(DAY1)).run_pass()
    assert (summary["sent"], summary["failed"]) == (1, 1)
    with slow_thanks() as session:
        rosa = follow_up(session, "day1-thanks", "S-1")
        assert rosa.status is FollowUpStatus.FAILED
        assert "takes more than" in (rosa.status_reason or "")
        assert follow_up(session, "day1-thanks", "S-2").status is FollowUpStatus.SENT


def test_a_stop_is_not_held_up_by_a_render_in_progress(
    slow_thanks: sessionmaker[Session], config: Config, app: Flask
) -> None:
    work = threading.Thread(target=dispatcher(slow_thanks, config, Clock(DAY1)).run_pass)
    work.start()
    time.sleep(0.5)  # the worker is now rendering Rosa's thanks
    started = time.monotonic()
    answer = post(app.test_client(), "/webhooks/twilio/sms", sms("STOP"))
    took = time.monotonic() - started
    work.join()
    assert answer.status_code == 200 and took < 1  # the render had over a second to go
    with slow_thanks() as session:
        rosa = session.scalars(select(Customer).where(Customer.phone == ROSA)).one()
        assert rosa.sms_opt_out_at is not None


def test_a_stored_stop_the_webhook_could_not_act_on_is_applied_by_the_worker(
    slow_thanks: sessionmaker[Session], config: Config
) -> None:
    with slow_thanks.begin() as session:  # stored, then the process died before acting
        assert store_sms(session, InboundMessage("SM" + "9" * 32, ROSA, "+1", "STOP"), now=DAY1)
    triage(slow_thanks, config, now=DAY1)
    with slow_thanks() as session:
        rosa = session.scalars(select(Customer).where(Customer.phone == ROSA)).one()
        assert rosa.sms_opt_out_at is not None


def test_a_later_start_is_not_undone_by_an_earlier_stop_read_late(
    slow_thanks: sessionmaker[Session], config: Config
) -> None:
    with slow_thanks.begin() as session:
        store_sms(session, InboundMessage("SM" + "7" * 32, ROSA, "+1", "STOP"), now=DAY1)
        store_sms(session, InboundMessage("SM" + "8" * 32, ROSA, "+1", "START"), now=DAY1)
    triage(slow_thanks, config, now=DAY1)
    with slow_thanks() as session:
        rosa = session.scalars(select(Customer).where(Customer.phone == ROSA)).one()
        assert rosa.sms_opt_out_at is None  # the START came last; the STOP was its past


def test_the_webhook_stores_the_reply_even_when_the_customer_stays_locked(
    slow_thanks: sessionmaker[Session], config: Config, engine: Engine, app: Flask
) -> None:
    """PostgreSQL: another worker holds Rosa's row for long; the reply is kept at once and the
    keyword left to the worker. SQLite has one writer and no row locks: the webhook waits for
    it (the busy timeout), then stores and acts."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "postgresql":
        row_lock = psycopg.connect(url.replace("+psycopg", ""))
        row_lock.execute("SELECT id FROM customers WHERE phone = %s FOR UPDATE", (ROSA,))
        release = threading.Timer(8.0, row_lock.close)
    else:
        writer = sqlite3.connect(
            url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
        )
        writer.execute("BEGIN IMMEDIATE")
        release = threading.Timer(1.0, writer.close)
    release.start()
    try:
        started = time.monotonic()
        answer = post(app.test_client(), "/webhooks/twilio/sms", sms("STOP"))
        assert answer.status_code == 200 and time.monotonic() - started < 7
        with slow_thanks() as session:  # kept, whatever came of the keyword
            assert session.scalars(select(Message.body).where(Message.body == "STOP")).one()
    finally:
        release.join()
    triage(slow_thanks, config, now=DAY1)  # the worker, seconds later
    with slow_thanks() as session:
        rosa = session.scalars(select(Customer).where(Customer.phone == ROSA)).one()
        assert rosa.sms_opt_out_at is not None


@pytest.mark.slow
@pytest.mark.timed
def test_sigterm_ends_the_worker_mid_render_within_the_send_timeout(
    engine: Engine, config: Config, tmp_path: Path
) -> None:
    sessions = due_backlog(engine, config, 4)
    with sessions.begin() as session:
        session.execute(
            update(MessageTemplate)
            .where(MessageTemplate.name == "thanks", MessageTemplate.channel == Channel.SMS)
            .values(body=SLOW)
        )
    path = process_config(
        tmp_path, engine, worker={"tick_seconds": 3600, "send_timeout_seconds": 5}
    )
    worker = subprocess.Popen(
        [POSTVENTA, "--config", str(path), "worker"], stderr=subprocess.PIPE, text=True
    )

    def claimed() -> bool:
        with sessions() as session:
            return any(row.status is FollowUpStatus.SENDING for row in day1(session))

    try:
        try:
            wait_for(claimed, "the first pass to claim the follow-ups", seconds=30)
        except AssertionError:
            worker.kill()
            raise AssertionError(worker.communicate()[1]) from None
        time.sleep(0.3)  # now rendering the first one
        worker.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, stderr = worker.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        worker.kill()
    assert worker.returncode == 0, stderr
    assert took < 5, f"stopped after {took:.1f} s"
    with sessions() as session:  # what it did not render waits for the next worker
        statuses = {row.status for row in day1(session)}
    assert FollowUpStatus.SENDING not in statuses and FollowUpStatus.SCHEDULED in statuses


def test_a_preview_of_a_huge_template_answers_in_time(
    owner_client: FlaskClient, session: Session
) -> None:
    install_defaults(session, DAY1)
    session.commit()
    thanks = session.scalars(
        select(MessageTemplate).where(
            MessageTemplate.name == "thanks", MessageTemplate.channel == Channel.SMS
        )
    ).first()
    assert thanks is not None
    token = csrf_token(owner_client, f"/admin/templates/{thanks.id}")
    started = time.monotonic()
    lipsum = owner_client.post(
        f"/admin/templates/{thanks.id}/preview",
        data={"body": "{{ lipsum(1000000) }}"},
        headers={"X-CSRFToken": token},
    ).get_json()
    assert "more than 1600" in lipsum["error"]  # twenty paragraphs: too long for an SMS, fast
    slow = owner_client.post(
        f"/admin/templates/{thanks.id}/preview", data={"body": SLOW}, headers={"X-CSRFToken": token}
    ).get_json()
    assert "takes more than" in slow["error"]
    assert time.monotonic() - started < RENDER_SECONDS + 3
