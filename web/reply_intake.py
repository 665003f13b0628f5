"""Twilio's SMS webhook, its common case served in front of Flask: a signed reply that is not a
consent keyword is stored with one INSERT on one of the few connections the process keeps, and
answered with empty TwiML, as the route in `web.webhooks` would answer it.

Everything else goes on to that route, its body intact, and is answered there as before: a
missing or bad signature, a missing field, an odd size or encoding, a STOP (acted on at once,
with locks), a query string, a database error (the route tries again on a pooled connection,
checked first). Why: through Flask's request handling, its hooks and a pooled session, a reply
cost twice the CPU of a bare INSERT under the same server (`bench/README.md`, "The webhook").
"""

from __future__ import annotations

import logging
import threading
from io import BytesIO
from time import perf_counter
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from sqlalchemy import Connection, Engine
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.exc import SQLAlchemyError

from scheduler.clock import utcnow
from scheduler.listening.keywords import read_consent
from scheduler.listening.reply_store import InboundMessage, insert_reply
from scheduler.logs import kept
from scheduler.settings import LiveSettings
from web.metrics import WEBHOOK_SECONDS
from web.webhooks import (
    BODY_LIMIT,
    NOTHING,
    REPLY_FIELDS,
    SMS,
    blueprint,
    problems,
    reply_of,
    signed,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PATH = f"{blueprint.url_prefix}{SMS}"
FORM = "application/x-www-form-urlencoded"
ANSWER = NOTHING.encode()
log = logging.getLogger(__name__)
HEADERS = [
    ("Content-Type", "application/xml; charset=utf-8"),
    ("Content-Length", str(len(ANSWER))),
]
KEPT = 4  # connections kept for replies: more replies at once go the route's way (its pool)
LOCK_WAIT_MS = 3000  # SQLite: how long a kept connection waits for the write lock


class ReplyIntake:
    """WSGI middleware: ordinary replies stored here, every other request passed to `app`."""

    def __init__(self, app: WSGIApplication, engine: Engine, settings: LiveSettings) -> None:
        self.app = app
        self.engine = engine
        self.settings = settings
        self._idle: list[Connection] = []
        self._opened = 0
        self._lock = threading.Lock()
        sqlalchemy_event.listen(engine, "engine_disposed", self._close_idle)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == PATH and environ.get("REQUEST_METHOD") == "POST":
            started = perf_counter()
            reply = self._reply(environ)
            if reply is not None and self._stored(reply):
                start_response("200 OK", list(HEADERS))  # a middleware outside may add to it
                WEBHOOK_SECONDS.labels(PATH).observe(perf_counter() - started)
                return [ANSWER]
        return self.app(environ, start_response)

    def _reply(self, environ: WSGIEnvironment) -> InboundMessage | None:
        """The signed, well-formed reply that is no consent keyword, or None for the route."""
        form = _form(environ)
        if form is None or problems(form, *REPLY_FIELDS):
            return None
        try:
            config = self.settings.current()  # read again every few seconds
        except SQLAlchemyError:
            return None  # the database, out of reach: the route says so, in the app's log
        if not signed(config, PATH, b"", form, environ.get("HTTP_X_TWILIO_SIGNATURE", "")):
            return None
        reply = reply_of(form)
        return None if read_consent(reply.body) is not None else reply

    def _stored(self, reply: InboundMessage) -> bool:
        """Stored, or already there (Twilio's retry); False when no kept connection is free
        or the database failed."""
        connection = self._take()
        if connection is None:
            return False
        try:
            stored = insert_reply(connection, reply, now=utcnow())  # committed: autocommit
        except Exception:  # a server restarted, a lock held: the next reply opens a new one
            log.warning("a reply went on to the route: its kept connection failed", exc_info=True)
            self._drop(connection)
            return False
        with self._lock:
            self._idle.append(connection)
        if stored is not None:
            kept("message.received", message_id=stored, channel=reply.channel.value)
        return True

    def _take(self) -> Connection | None:
        """A kept connection, out of the pool: no check-out, ping and reset per request."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            if self._opened >= KEPT:
                return None
            self._opened += 1
        try:
            # The one INSERT is its own transaction: on PostgreSQL one round trip, not three
            # (BEGIN, INSERT, COMMIT); on SQLite it waits its turn for the write lock, for a
            # few seconds, then lets the route wait its own.
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError:  # none to be had (the pool's wait timed out too)
            self._drop(None)
            return None
        connection.detach()  # closing it closes the database connection itself
        if connection.dialect.name == "sqlite":  # on the driver's own: SQLAlchemy would BEGIN
            connection.connection.dbapi_connection.execute(  # type: ignore[union-attr]
                f"PRAGMA busy_timeout = {LOCK_WAIT_MS}"
            )
        return connection

    def _drop(self, connection: Connection | None) -> None:
        with self._lock:
            self._opened -= 1
        if connection is not None:
            connection.close()

    def _close_idle(self, _engine: Engine) -> None:
        """The engine was disposed (a test's end, a process's): its kept connections go."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._opened -= len(idle)
        for connection in idle:
            connection.close()


class Fields(dict[str, str]):
    """A form whose fields come once each, as Twilio sends them; read by twilio's validator
    as it reads a form, by `getall` (a MultiDict has none: a failed lookup per field)."""

    def getall(self, name: str) -> list[str]:
        return [self[name]]


def _form(environ: WSGIEnvironment) -> Fields | None:
    """The URL-encoded form of a request of a stated size within the route's limit, parsed as
    Flask parses it; its body is put back for the route to read again."""
    if environ.get("QUERY_STRING") or _mimetype(environ) != FORM:
        return None
    size = environ.get("CONTENT_LENGTH", "")
    if not (size.isascii() and size.isdigit() and len(size) <= len(str(BODY_LIMIT))):
        return None  # none given, or not a size the route would take
    length = int(size)
    if not 0 < length <= BODY_LIMIT:
        return None
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = BytesIO(body)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return None
    if len(body) != length:
        return None  # the caller went away: the route says so
    pairs = parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")
    fields = Fields(pairs)
    return fields if len(fields) == len(pairs) else None  # a field twice: the route reads it


def _mimetype(environ: WSGIEnvironment) -> str:
    return str(environ.get("CONTENT_TYPE", "")).partition(";")[0].strip().lower()
