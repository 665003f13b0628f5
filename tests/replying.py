"""A customer answering by SMS, as Twilio delivers it: the shop's public address and token,
Rosa's sale with her day-1 thank-you sent, signed webhook requests, and the worker reading
what arrived."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from scheduler.clock import utcnow
from scheduler.config import Config, defaults
from scheduler.worker import read_replies
from tests.dispatching import Clock, dispatcher, setup_sales
from tests.factories import NOW, sale_input

TOKEN = "12345678901234567890123456789012"
PUBLIC = "https://shop.example.pe"  # what Twilio calls; the test client is http://localhost
ROSA = "+51987654321"
DAY1 = NOW.replace(day=24)


@pytest.fixture
def config(engine: Engine) -> Config:
    url = engine.url.render_as_string(hide_password=False)
    return defaults().replace(
        database={"url": url},
        business={"public_url": PUBLIC},
        twilio={"auth_token": TOKEN},
        cases={"notify_emails": ["ana@mitienda.pe"]},  # someone to tell of a case
    )


@pytest.fixture
def sent(engine: Engine, config: Config) -> Iterator[sessionmaker[Session]]:
    """Rosa bought, and her day-1 thank-you went out (outbox)."""
    sessions = setup_sales(engine, config, sale_input("S-1"))
    dispatcher(sessions, config, Clock(DAY1)).run_pass()
    yield sessions


def post(client: FlaskClient, path: str, params: dict[str, str], **kwargs: Any) -> TestResponse:
    """A request as Twilio would send it, signed for the public URL."""
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
    headers = {"X-Twilio-Signature": kwargs.pop("signature", signature)}
    return client.post(path, data=params, headers=headers, **kwargs)


def sms(body: str, sid: str = "SM" + "1" * 32, sender: str = ROSA) -> dict[str, str]:
    return {"MessageSid": sid, "From": sender, "To": "+15005550006", "Body": body}


def reply(client: FlaskClient, body: str, n: int, sender: str = "+51987654321") -> None:
    """The customer writes; the worker reads it, as it does every few seconds."""
    response = post(client, "/webhooks/twilio/sms", sms(body, sid=f"SM{n:032d}", sender=sender))
    assert response.status_code == 200
    read(client.application)


def read(app: Flask) -> None:
    services = app.extensions["postventa"]
    read_replies(dispatcher(services.sessions, services.config, utcnow))
