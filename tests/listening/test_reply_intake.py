"""The SMS webhook's common case served in front of Flask (`web.reply_intake`): the replies it
stores itself, what it leaves to the route, and the connections it keeps."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from scheduler.config import defaults
from scheduler.lifecycle import Channel, Direction, MessageStatus
from scheduler.listening.reply_store import InboundMessage, insert_reply
from scheduler.models import Customer, Message
from tests.conftest import PG_ADMIN
from tests.processes import wait_for
from tests.replying import PUBLIC, ROSA, TOKEN, config, post, sent, sms  # noqa: F401 - fixtures
from web import create_app, reply_intake, webhooks

__all__ = ["config", "sent"]
PATH = "/webhooks/twilio/sms"


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The bodies of the replies that reached the Flask route, in order."""
    bodies: list[str] = []
    receive = webhooks.receive

    def counted(session: Session, message: InboundMessage) -> str | None:
        bodies.append(message.body)
        return receive(session, message)

    monkeypatch.setattr(webhooks, "receive", counted)
    return bodies


def inbound_bodies(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        query = select(Message.body).where(Message.direction == Direction.INBOUND)
        return list(session.scalars(query.order_by(Message.id)))


def test_a_reply_is_written_as_the_orm_reads_it_and_a_retry_writes_nothing(
    session: Session,
) -> None:
    now = datetime(2026, 3, 5, 14, 30, 15, 123456, tzinfo=ZoneInfo("America/Lima"))
    reply = InboundMessage(
        "SM" + "7" * 32, f"whatsapp:{ROSA}", "+15005550006", "Sí 👍", Channel.WHATSAPP, "score:9"
    )
    with session.begin():
        stored = insert_reply(session.connection(), reply, now=now)
        assert insert_reply(session.connection(), reply, now=now) is None
    message = session.get(Message, stored)
    assert message is not None
    written = (message.direction, message.channel, message.status, message.body)
    assert written == (Direction.INBOUND, Channel.WHATSAPP, MessageStatus.RECEIVED, "Sí 👍")
    assert message.created_at == message.status_updated_at == now  # the same instant, in UTC
    assert message.created_at.tzinfo is not None and message.created_at.utcoffset() == timedelta()
    assert (message.from_address, message.provider_id, message.button_payload) == (
        f"whatsapp:{ROSA}",
        "SM" + "7" * 32,
        "score:9",
    )


def test_an_ordinary_reply_is_stored_once_before_flask(
    client: FlaskClient,
    sent: sessionmaker[Session],
    routed: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="postventa"):  # as the route logs it
        first = post(client, PATH, sms("todo bien, gracias"))
        again = post(client, PATH, sms("todo bien, gracias"))  # Twilio's retry
        whatsapp = post(
            client,
            PATH,
            sms("", sid="SM" + "2" * 32, sender=f"whatsapp:{ROSA}")
            | {"ButtonText": "Sí, todo bien", "ButtonPayload": "score:9"},
        )
    assert first.status_code == again.status_code == whatsapp.status_code == 200
    assert first.get_data(as_text=True) == webhooks.NOTHING == again.get_data(as_text=True)
    assert first.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert routed == []  # none went through Flask's route
    assert inbound_bodies(sent) == ["todo bien, gracias", "Sí, todo bien"]
    with sent() as session:
        button = session.scalars(select(Message).where(Message.channel == "whatsapp")).one()
        assert button.button_payload == "score:9" and button.from_address == f"whatsapp:{ROSA}"
    logged = [record for record in caplog.records if record.getMessage() == "message.received"]
    assert {record.name for record in logged} == {"postventa"}
    assert [record.fields["channel"] for record in logged] == ["sms", "whatsapp"]  # type: ignore[attr-defined]


def test_the_route_answers_what_is_not_an_ordinary_signed_reply(
    client: FlaskClient, sent: sessionmaker[Session], routed: list[str]
) -> None:
    stop = post(client, PATH, sms("STOP", sid="SM" + "3" * 32))
    assert stop.status_code == 200
    with sent() as session:  # acted on at once, by the route
        assert session.scalars(select(Customer.sms_opt_out_at)).one() is not None
    forged = post(client, PATH, sms("hola", sid="SM" + "4" * 32), signature="bm90IGEgc2lnbg==")
    odd = post(client, PATH, sms("hola", sid="SM" + "4" * 32), signature="ñandú")
    absurd = post(
        client,
        PATH,
        sms("hola", sid="SM" + "4" * 32),
        environ_overrides={"CONTENT_LENGTH": "9" * 5000},
    )
    assert 400 <= absurd.status_code < 500
    missing = post(client, PATH, {"From": ROSA, "Body": "hola"})
    assert forged.status_code == odd.status_code == 403 and missing.status_code == 400
    assert missing.get_data(as_text=True) == "missing form field(s): MessageSid, To\n"
    twice = MultiDict([*sms("dos veces", sid="SM" + "5" * 32).items(), ("Body", "otra vez")])
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + PATH, twice)
    repeated = client.post(PATH, data=twice, headers={"X-Twilio-Signature": signature})
    query = sms("con consulta", sid="SM" + "6" * 32)
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + PATH + "?x=1", query)
    queried = client.post(PATH + "?x=1", data=query, headers={"X-Twilio-Signature": signature})
    assert repeated.status_code == queried.status_code == 200
    assert routed == ["STOP", "dos veces", "con consulta"]  # the forged and the incomplete: 4xx
    assert inbound_bodies(sent) == ["STOP", "dos veces", "con consulta"]


def test_with_every_kept_connection_busy_the_route_stores_the_reply(
    client: FlaskClient,
    sent: sessionmaker[Session],
    routed: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reply_intake, "KEPT", 0)
    answer = post(client, PATH, sms("todo bien"))
    assert answer.status_code == 200 and routed == ["todo bien"]
    assert inbound_bodies(sent) == ["todo bien"]


def test_a_failed_insert_leaves_the_reply_to_the_route_and_its_slot_to_the_next(
    app: Flask,
    client: FlaskClient,
    sent: sessionmaker[Session],
    routed: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    driver = app.extensions["postventa"].engine.dialect.loaded_dbapi
    insert = insert_reply
    failures = iter([driver.OperationalError("the server closed the connection")])

    def failing_once(*args: Any, **kwargs: Any) -> int | None:
        if (failure := next(failures, None)) is not None:
            raise failure
        return insert(*args, **kwargs)

    monkeypatch.setattr(reply_intake, "insert_reply", failing_once)
    monkeypatch.setattr(reply_intake, "KEPT", 1)  # the one slot, given back when it failed
    first = post(client, PATH, sms("uno", sid="SM" + "1" * 32))
    second = post(client, PATH, sms("dos", sid="SM" + "2" * 32))
    assert first.status_code == second.status_code == 200
    assert routed == ["uno"]  # the second went in front of Flask again
    assert inbound_bodies(sent) == ["uno", "dos"]


def test_a_body_that_is_not_utf8_goes_to_the_route_and_stores_nothing(
    client: FlaskClient, sent: sessionmaker[Session], routed: list[str]
) -> None:
    body = b"MessageSid=SM" + b"1" * 32 + b"&From=%2B51987654321&To=%2B15005550006&Body=\xff"
    answer = client.post(
        PATH,
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": "bm90IGEgc2lnbg=="},
    )
    assert answer.status_code == 403 and routed == [] and inbound_bodies(sent) == []


def _connections(application: str) -> int:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        row = admin.execute(query, (application,)).fetchone()
        return int(row[0]) if row else 0


def test_a_kept_connection_the_server_dropped_is_replaced_and_disposal_closes_it(
    pg_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, routed: list[str]
) -> None:
    """PostgreSQL alone: a server restarting (its connections cut) is what ends a kept
    connection; SQLite has no server."""
    monkeypatch.chdir(tmp_path)
    application = f"postventa-intake-{uuid.uuid4().hex[:8]}"
    url = pg_engine.url.set(query={"application_name": application})
    app: Flask = create_app(
        defaults().replace(
            database={"url": url.render_as_string(hide_password=False)},
            business={"public_url": PUBLIC},
            twilio={"auth_token": TOKEN},
        )
    )
    client = app.test_client()
    assert post(client, PATH, sms("uno", sid="SM" + "1" * 32)).status_code == 200
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:  # the server cuts them all
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application,),
        )
    wait_for(lambda: _connections(application) == 0, "the server to end the connections", 10)
    assert post(client, PATH, sms("dos", sid="SM" + "2" * 32)).status_code == 200
    assert post(client, PATH, sms("tres", sid="SM" + "3" * 32)).status_code == 200
    assert routed == ["dos"]  # the route, pinging first, stored it; the next was kept again
    with pg_engine.connect() as connection:
        query = select(Message.body).where(Message.direction == Direction.INBOUND)
        assert list(connection.scalars(query.order_by(Message.id))) == ["uno", "dos", "tres"]
    assert _connections(application) >= 1
    app.extensions["postventa"].engine.dispose()
    wait_for(lambda: _connections(application) == 0, "every connection to close", 10)
