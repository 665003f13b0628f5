"""The processes' log: one JSON object per event with `[logging] format = "json"`, readable
lines by default, and nobody's phone, address or words unless `personal_data` lets them in."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from scheduler import audit, logs
from scheduler.config import Config, LoggingConfig, defaults
from scheduler.sending.transports import Failure, TransportError
from scheduler.settings import LiveSettings
from scheduler.worker import Worker
from tests.dispatching import DAY1, Clock, dispatcher, scripted, setup_sales
from tests.factories import sale_input

PHONE, EMAIL = "+51987654321", "rosa.quispe@example.pe"


def settings(**keys: object) -> LoggingConfig:
    """`[logging]` with these keys, the others as the built-in defaults."""
    return defaults().replace(logging=keys).logging


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(capsys)]  # every line is one JSON object


def test_each_send_is_one_json_event_with_its_ids_outcome_and_duration(
    engine: Engine, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(settings(format="json"))
    sessions = setup_sales(engine, config, sale_input(email=EMAIL))
    capsys.readouterr()
    dispatcher(sessions, config, Clock(DAY1), worker_id="w-1").run_pass()
    sent = [line for line in json_lines(capsys) if line.get("event") == "follow_up.sent"]
    assert len(sent) == 1
    (line,) = sent
    assert line["worker_id"] == "w-1" and line["outcome"] == "sent"
    assert line["channel"] == "sms" and line["level"] == "info"
    assert isinstance(line["follow_up_id"], int) and isinstance(line["message_id"], int)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["time"].endswith("Z")


def test_a_failed_send_says_why_without_the_number(
    engine: Engine, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(settings(format="json"))
    sessions = setup_sales(engine, config, sale_input())
    clock = Clock(DAY1)
    refused = TransportError(f"the 'To' number {PHONE} is not valid", failure=Failure.PERMANENT)
    dispatcher(sessions, config, clock, scripted(sessions, clock, refused)).run_pass()
    output = capsys.readouterr().err
    failed = [json.loads(line) for line in output.splitlines() if "follow_up.failed" in line]
    assert failed and failed[0]["level"] == "warning"
    assert failed[0]["error"] == "the 'To' number +[phone] is not valid"
    assert PHONE not in output


def test_personal_data_is_masked_in_every_line_unless_allowed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = logging.getLogger("scheduler.test")
    said = "customer %s (%s) wrote"
    logs.configure(settings())
    log.warning(said, PHONE, EMAIL)
    logs.event(log, "message.seen", body="la lavadora no prende", to=PHONE, message_id=7)
    masked = "\n".join(lines(capsys))
    assert "customer +[phone] ([email]) wrote" in masked
    assert "message.seen message_id=7" in masked
    assert PHONE not in masked and EMAIL not in masked and "lavadora" not in masked
    logs.configure(settings(personal_data=True))
    log.warning(said, PHONE, EMAIL)
    logs.event(log, "message.seen", body="la lavadora no prende", message_id=7)
    shown = "\n".join(lines(capsys))
    assert f"customer {PHONE} ({EMAIL}) wrote" in shown and "body=la lavadora no prende" in shown


def test_a_traceback_is_masked_too_and_stays_inside_its_json_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure(settings(format="json"))
    try:
        raise ValueError(f"no customer with {EMAIL}")
    except ValueError:
        logging.getLogger("scheduler.test").exception("lookup failed")
    (line,) = json_lines(capsys)
    assert line["message"] == "lookup failed" and line["level"] == "error"
    assert "ValueError: no customer with [email]" in line["error"]


def test_the_text_format_is_one_readable_line_a_record(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(settings())
    logs.event(logging.getLogger("scheduler.worker"), "worker.pass", worker_id="w-1", sent=3)
    (line,) = lines(capsys)
    assert line.endswith(" INFO scheduler.worker: worker.pass worker_id=w-1 sent=3")


def test_events_of_a_transaction_are_logged_once_it_commits_never_if_it_rolls_back(
    session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(settings(format="json"))
    audit.record(
        session, at=DAY1, actor="user:3", action="case.open", entity_type="case", entity_id=9
    )
    assert lines(capsys) == []  # not yet: the transaction may still roll back
    session.rollback()
    assert lines(capsys) == []
    audit.record(
        session, at=DAY1, actor="user:3", action="case.resolve", entity_type="case", entity_id=9
    )
    session.commit()
    (line,) = json_lines(capsys)
    assert line | {"time": None} == {
        "time": None,
        "level": "info",
        "logger": "postventa",
        "event": "case.resolve",
        "actor": "user:3",
        "entity_type": "case",
        "entity_id": 9,
    }


def test_an_idle_worker_writes_nothing_at_info_and_libraries_keep_their_routine_quiet(
    engine: Engine, config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(settings())
    setup_sales(engine, config)
    capsys.readouterr()
    Worker(engine, LiveSettings.from_engine(engine, config)).tick()  # nothing is due
    assert lines(capsys) == []
    for name in ("apscheduler.executors.default", "twilio.http_client"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
    logs.configure(settings(level="debug"))
    Worker(engine, LiveSettings.from_engine(engine, config)).tick()
    assert any("worker.pass" in line for line in lines(capsys))
