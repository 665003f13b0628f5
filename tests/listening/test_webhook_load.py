"""A thousand signed webhook requests, concurrently, with Twilio's retries mixed in: every reply
is stored exactly once and none is lost."""

from __future__ import annotations

import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator
from werkzeug.serving import BaseWSGIServer, make_server

from scheduler.lifecycle import Direction
from scheduler.models import Case, Message
from tests.replying import PUBLIC, TOKEN, config, read, sent, sms  # noqa: F401 - fixtures

__all__ = ["config", "sent"]
REQUESTS = 1_000
DISTINCT = 800  # 200 of the requests are retries of earlier ones


@pytest.fixture
def server(app: Flask) -> Iterator[BaseWSGIServer]:
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    thread.join(timeout=10)


def _post(port: int, n: int) -> int:
    params = {
        "MessageSid": f"SM{n % DISTINCT:032d}",
        "From": f"+5198{n % 37:07d}" if n % 5 else "+51987654321",  # Rosa, and strangers
        "To": "+15005550006",
        "Body": f"mensaje {n % DISTINCT}: la entrega llego tarde" if n % 3 else "gracias!",
    }
    path = "/webhooks/twilio/sms"
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=urllib.parse.urlencode(params).encode(),
        headers={"X-Twilio-Signature": signature},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return int(answer.status)


@pytest.mark.slow
def test_a_thousand_signed_requests_lose_and_duplicate_nothing(
    app: Flask, server: BaseWSGIServer, sent: sessionmaker[Session]
) -> None:
    order = list(range(REQUESTS))
    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(lambda n: _post(server.server_port, n), order))
    assert statuses == [200] * REQUESTS
    read(app)  # the worker reads them: Rosa's complaints make one case
    with sent() as session:
        inbound = (
            select(func.count()).select_from(Message).where(Message.direction == Direction.INBOUND)
        )
        assert session.scalar(inbound) == DISTINCT
        sids = session.scalars(
            select(Message.provider_id).where(Message.direction == Direction.INBOUND)
        ).all()
        assert len(set(sids)) == DISTINCT
        # Rosa complained many times: one open case holds all her complaints.
        assert session.scalar(select(func.count()).select_from(Case)) == 1
