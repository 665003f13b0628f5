"""The least a server can do for Twilio's SMS webhook, as the yardstick of bench/replies.py: a
bare WSGI function that reads the form, stores the reply with the app's own INSERT (one row
into `messages`, a retry stored once) and answers the same empty TwiML. No signature check, no
framework, no ORM: one psycopg connection per worker process, a commit per request.

    BARE_WEBHOOK_DATABASE=postgresql://... PYTHONPATH=bench \
        gunicorn --config python:web.gunicorn_config bare.webhook:app
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import psycopg

INSERT = (
    "INSERT INTO messages (direction, channel, from_address, to_address, body, provider_id, "
    "status, created_at, status_updated_at, button_payload) "
    "VALUES ('inbound', 'sms', %s, %s, %s, %s, 'received', %s, %s, NULL) "
    "ON CONFLICT (provider_id) DO NOTHING RETURNING id"
)
TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response />'  # the app's answer to most replies
HEADERS = [("Content-Type", "application/xml; charset=utf-8"), ("Content-Length", str(len(TWIML)))]
_connection: list[psycopg.Connection[Any]] = []  # this process's, opened at its first request


def _database() -> psycopg.Connection[Any]:
    if not _connection:
        url = os.environ["BARE_WEBHOOK_DATABASE"].replace("postgresql+psycopg://", "postgresql://")
        _connection.append(psycopg.connect(url))
    return _connection[0]


def app(
    environ: dict[str, Any], start_response: Callable[[str, list[tuple[str, str]]], Any]
) -> Iterable[bytes]:
    size = int(environ.get("CONTENT_LENGTH") or 0)
    form = parse_qs(environ["wsgi.input"].read(size).decode("utf-8"))
    field = {name: values[0] for name, values in form.items()}
    now = datetime.now(UTC)
    connection = _database()
    connection.execute(
        INSERT,
        (field["From"], field["To"], field.get("Body", ""), field["MessageSid"], now, now),
    )
    connection.commit()
    start_response("200 OK", HEADERS)
    return [TWIML]
