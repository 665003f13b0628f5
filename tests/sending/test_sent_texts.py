"""The copy of what went out that the outbox is searched in (PostgreSQL): a text waits at its
send, is copied by the worker, waits again when it changes, and a search finds it at every
step by its own words and no other's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from scheduler import erasure, worker
from scheduler.config import Config, defaults
from scheduler.db import make_session_factory
from scheduler.models import Message
from scheduler.sending import sent_texts
from scheduler.sending.sent import SentFilter, sent_messages
from scheduler.settings import LiveSettings
from tests.dispatching import Clock, dispatcher, setup_sales
from tests.factories import NOW, inbound_sms, outbound_sms, sale_input

DAY1 = NOW + timedelta(days=1)


def _state(session: Session) -> tuple[dict[int, str], set[int]]:
    """The copies (message id -> text) and the ids waiting."""
    copies = {
        row.message_id: row.body for row in session.execute(select(sent_texts.OUTBOUND_TEXTS))
    }
    waiting = set(session.scalars(select(sent_texts.WAITING.c.message_id)))
    return copies, waiting


def _found(session: Session, *words: str) -> list[str]:
    rows, _next = sent_messages(session, SentFilter(words=words))
    return [message.body for message, _customer in rows]


def _sent_follow_ups(engine: Engine, config: Config, sales: int) -> list[Message]:
    many = (sale_input(f"S-{n}", phone=f"+5198765430{n}") for n in range(sales))
    sessions = setup_sales(engine, config, *many)
    dispatcher(sessions, config, Clock(DAY1)).run_pass()
    with sessions() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def test_a_text_waits_at_its_send_and_is_found_before_and_after_its_copy(
    pg_engine: Engine,
) -> None:
    sent = _sent_follow_ups(pg_engine, defaults(), 3)
    assert len(sent) == 3
    ids = {message.id for message in sent}
    word = sent[0].body.split()[0]
    with Session(pg_engine) as session:
        session.add(inbound_sms("la lavadora no prende", DAY1))  # a reply: never copied
        session.commit()
        assert _state(session) == ({}, ids)  # nothing copied on the send path
        before = _found(session, word)
        assert len(before) == 3 and _found(session, "zzzz") == []
        assert sent_texts.copy_waiting(session, limit=2) == 2
        assert sent_texts.copy_waiting(session, limit=2) == 1
        session.commit()
        assert _state(session) == ({m.id: m.body for m in sent}, set())
        assert _found(session, word) == before and _found(session, "prende") == []


def test_a_changed_text_loses_its_copy_and_waits_again(pg_engine: Engine) -> None:
    """Erased on request or by retention: its old words are found no more, not even in the
    copy, from the transaction that changed it on."""
    with Session(pg_engine) as session:
        kept = outbound_sms("Tu garantía vence el lunes", NOW)
        changed = outbound_sms("Hola Rosa, tu dirección es Av. Lima 123", NOW)
        session.add_all([kept, changed])
        session.flush()
        sent_texts.copy_waiting(session)
        session.execute(update(Message).where(Message.id == changed.id).values(body=erasure.ERASED))
        session.execute(update(Message).where(Message.id == kept.id).values(status="delivered"))
        assert _state(session) == ({kept.id: kept.body}, {changed.id})
        assert _found(session, "Lima") == [] and _found(session, "garantía") == [kept.body]
        assert _found(session, erasure.ERASED) == [erasure.ERASED]  # found while waiting
        sent_texts.copy_waiting(session)
        assert _state(session) == ({kept.id: kept.body, changed.id: erasure.ERASED}, set())
        session.delete(kept)
        session.flush()
        assert _state(session) == ({changed.id: erasure.ERASED}, set())


def test_a_stale_copy_is_renewed_and_never_shows_a_message(pg_engine: Engine) -> None:
    """A worker that read a text just before it was erased may copy the old text after the
    erasure took the copy away (its message waits again): the search checks each message's
    own text, and the next copy replaces the old one."""
    with Session(pg_engine) as session:
        message = outbound_sms(erasure.ERASED, NOW)
        session.add(message)
        session.flush()
        session.execute(
            sent_texts.OUTBOUND_TEXTS.insert().values(message_id=message.id, body="Av. Lima 123")
        )
        assert _found(session, "Lima") == []
        assert sent_texts.copy_waiting(session) == 1
        assert _state(session) == ({message.id: erasure.ERASED}, set())


def test_a_message_deleted_while_waiting_is_taken_and_not_copied(pg_engine: Engine) -> None:
    with Session(pg_engine) as session:
        message = outbound_sms("Gracias por tu compra", NOW)
        session.add(message)
        session.flush()
        session.delete(message)
        session.flush()
        assert sent_texts.copy_waiting(session) == 1
        assert _state(session) == ({}, set())


def test_two_workers_copy_apart(pg_engine: Engine) -> None:
    """The second takes what the first has not locked: each text copied once, none waits."""
    sessions = make_session_factory(pg_engine)
    with sessions.begin() as session:
        session.add_all(outbound_sms(f"mensaje {n}", NOW) for n in range(5))
    with sessions() as first, sessions() as second:
        assert sent_texts.copy_waiting(first, limit=3) == 3
        assert sent_texts.copy_waiting(second, limit=5) == 2
        first.commit()
        second.commit()
        copies, waiting = _state(first)
    assert sorted(copies.values()) == [f"mensaje {n}" for n in range(5)] and waiting == set()


def test_a_common_word_is_found_by_reading_the_messages(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past WRITTEN_MOST messages a word is in, the messages are read the newest first: the
    same messages either way."""
    with Session(pg_engine) as session:
        session.add_all(outbound_sms(body, NOW) for body in ("mensaje uno", "mensaje dos", "otro"))
        session.flush()
        sent_texts.copy_waiting(session)
        session.add(outbound_sms("mensaje tres", NOW))  # waiting
        session.flush()
        looked_up = sorted(_found(session, "mensaje"))
        monkeypatch.setattr("scheduler.sending.sent.WRITTEN_MOST", 2)
        assert sent_texts.holding(session, "mensaje", 2) is None
        assert (
            sorted(_found(session, "mensaje"))
            == looked_up
            == [
                "mensaje dos",
                "mensaje tres",
                "mensaje uno",
            ]
        )


def test_the_worker_copies_on_postgresql_alone(engine: Engine, config: Config) -> None:
    scheduler = BackgroundScheduler()
    running = worker.Worker(engine, LiveSettings.from_engine(engine, config))
    running.schedule(scheduler)
    job = scheduler.get_job(worker.TEXTS_JOB)
    if engine.dialect.name == "sqlite":
        assert job is None
        return
    assert job.trigger.interval == timedelta(seconds=worker.TEXTS_SECONDS)
    with Session(engine) as session:
        session.add_all(outbound_sms(f"mensaje {n}", NOW) for n in range(3))
        session.commit()
    assert running.copy_sent_texts() == 3 and running.copy_sent_texts() == 0
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM outbound_texts")) == 3
