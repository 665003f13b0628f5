"""A Twilio-compatible fake of the Messages REST API, served over real HTTP on 127.0.0.1.

Tests and benchmarks drive the real `twilio` SDK against it, so the production transport is
exercised end to end (form encoding, Basic auth, error parsing, timeouts) without the network.

What the SDK (twilio 9.x) does, read from its source, that the transport code relies on:

Base URL. `Client.api` is a `twilio.base.domain.Domain` built with
`base_url="https://api.twilio.com"`; every Messages request URL is assembled at request time by
`Domain.absolute_url()` from `client.api.base_url`. So the supported switch is::

    client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=10))
    client.api.base_url = "http://127.0.0.1:PORT"   # create, list/stream and fetch all go there

Only `ClientBase.get_hostname()` rewrites URLs afterwards, and only when an edge or region is
set (arguments, or the TWILIO_EDGE / TWILIO_REGION environment variables); it would mangle
"127.0.0.1:PORT", so `FakeTwilio.client()` clears `client.edge` and `client.region`.

Failures. `TwilioHttpClient.request()` calls `requests.Session.send()` and wraps nothing, so
the `requests` exceptions reach the caller unchanged:

* read timeout (sent, no answer within `timeout`): `requests.exceptions.ReadTimeout`
  (a `requests.exceptions.Timeout`, not a `requests.exceptions.ConnectionError`); the message
  may or may not exist.
* connection refused: `requests.exceptions.ConnectionError` whose `args[0]` is a
  `urllib3.exceptions.MaxRetryError` with `.reason` a `urllib3.exceptions.NewConnectionError`;
  nothing was sent.
* connection dropped after the request was sent (`Respond.drop`): also
  `requests.exceptions.ConnectionError`, wrapping `urllib3.exceptions.ProtocolError`; the
  message may or may not exist, so ConnectionError alone does not prove "not sent".

An HTTP 4xx/5xx answer to create/fetch becomes `twilio.base.exceptions.TwilioRestException`
with `.status` (HTTP status), `.code` (the body's "code") and `.msg` ("Unable to create record:
" or "Unable to fetch record: " followed by the body's "message"). A non-200 answer to a list
page raises a plain `twilio.base.exceptions.TwilioException("Unable to fetch page", response)`.

WhatsApp goes through the same Messages.json with `whatsapp:+E164` in To and From (or a
Messaging Service), and the fake checks what Twilio checks (codes from Twilio's error pages):

* a `whatsapp:` To needs a `whatsapp:` From or a MessagingServiceSid: 400 63007 (Twilio answers
  this one synchronously: "Twilio could not find a Channel with the specified From address").
  The reverse, a `whatsapp:` From to a plain number, is refused with 400 63003.
* Content templates: `ContentSid` (`HX` + 32 hex) of a template registered with
  `FakeTwilio.add_content()`, else 400 21655; `ContentVariables` a JSON object of non-empty
  strings keyed "1", "2"..., else 400 21656; ContentVariables without ContentSid 400 21654;
  Body together with ContentSid 400 35127; variables that do not match the template's
  placeholders 400 63028. The stored body is the template text with the variables filled in;
  over 1 024 characters on WhatsApp it is 400 63021.
* The 24-hour customer service window, opened by `FakeTwilio.customer_wrote()`: a free-form
  Body (or media) to a `whatsapp:` number whose window is closed is refused with 400 63016, or,
  with `whatsapp_window_failure = "async"`, accepted (201, queued) and stored as failed with
  error_code 63016, as real Twilio does after the fact.

Simplification: real Twilio reports 63016, 63021 and 63028 asynchronously (the create answers
201 and the message fails later); the fake answers them at once, except 63016 in "async" mode.
The fake never posts status callbacks: StatusCallback is only recorded.

Time is `datetime.now(UTC)` throughout (dates of messages, the window), so freezegun and
time-machine move the fake's clock too.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import math
import random
import re
import socket
import sys
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

from twilio.http.http_client import TwilioHttpClient  # type: ignore[import-untyped, unused-ignore]
from twilio.rest import Client  # type: ignore[import-untyped, unused-ignore]

ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "feedfacecafebeeffeedfacecafebeef"

API_VERSION = "2010-04-01"
_E164 = re.compile(r"\+[1-9]\d{7,14}")
WHATSAPP = "whatsapp:"
WHATSAPP_WINDOW = timedelta(hours=24)  # the customer service window after each inbound message
WHATSAPP_CONTENT_LIMIT = 1024  # template text plus its variables, characters
OUTSIDE_WINDOW = (
    "Failed to send freeform message because you are outside the allowed window. "
    "If you are using WhatsApp, please use a Message Template."
)
_CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
_PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")
_VARIABLE_KEY = re.compile(r"[1-9]\d*")
_ROUTE = re.compile(rf"/{API_VERSION}/Accounts/([^/]+)/Messages(?:/([^/]+))?\.json")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_SENT_STATUSES = {"sent", "delivered", "undelivered", "read"}
_DEFAULT_CODES = {401: 20003, 404: 20404, 405: 20004, 429: 20429, 500: 20500, 503: 20503}
_DEFAULT_MESSAGES = {
    429: "Too Many Requests",
    500: "An internal server error has occurred",
    503: "Service Unavailable",
}
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("\f^{}\\[~]|€")


@dataclass
class Recorded:
    """One request the fake received, kept so tests can assert what the transport sent."""

    method: str
    path: str
    params: dict[str, str]  # form fields (POST) or query (GET); a repeated field keeps its last
    headers: dict[str, str]
    received_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Respond:
    """A scripted answer for one POST /Messages.json, to reproduce Twilio's failure modes."""

    kind: str
    status: int = 201
    code: int | None = None
    message: str = ""
    seconds: float = 0.0
    create: bool = True
    retry_after: str | int | None = None  # sent as a Retry-After header with the error

    @staticmethod
    def created() -> Respond:
        """The normal answer: validate, store, 201."""
        return Respond("created")

    @staticmethod
    def error(
        status: int, code: int, message: str, retry_after: str | int | None = None
    ) -> Respond:
        """Answer an error without validating or storing, e.g. 400 21211, 429 20429, 500."""
        return Respond("error", status, code, message, create=False, retry_after=retry_after)

    @staticmethod
    def hang(seconds: float, create: bool = False) -> Respond:
        """Wait `seconds` before answering 201, so the client times out first.

        create=True stores the message before waiting: a send whose response was lost.
        create=False stores it only if the wait runs to the end, so reconciliation during the
        wait finds nothing. Stopping the fake ends the wait without storing or answering.
        """
        return Respond("hang", seconds=seconds, create=create)

    @staticmethod
    def created_then_error(status: int = 500) -> Respond:
        """Store the message but answer an error: the ambiguous case reconciliation handles."""
        return Respond("created_then_error", status=status)

    @staticmethod
    def drop(create: bool = False) -> Respond:
        """Close the connection without answering (the SDK raises ConnectionError).

        create=True stores the message first, as when the connection dies after Twilio
        accepted the request.
        """
        return Respond("drop", create=create)


@dataclass(frozen=True)
class Faults:
    """Twilio having a bad day: each create fails with probability `rate`, in one of the ways
    below, picked at random (repeatably, from `seed`). No number fails more than
    `most_per_number` times, so every message can still get through within its attempts."""

    rate: float
    seed: int = 0
    most_per_number: int = 2
    late_seconds: float = 3.0  # longer than the client's timeout

    def kinds(self) -> dict[str, Respond]:
        return {
            "500, not created": Respond.error(500, 20500, "An internal server error has occurred"),
            "500, created": Respond.created_then_error(500),
            "429, Retry-After": Respond.error(429, 20429, "Too Many Requests", retry_after=1),
            "timeout, created": Respond.hang(self.late_seconds, create=True),
            "timeout, never processed": Respond.hang(3600, create=False),
        }


@dataclass
class _Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Accepted:
    """A create that passed the checks: what to store."""

    body: str
    whatsapp: bool
    failure: tuple[int, str] | None = None  # (error code, message) when it fails after the 201


def _error(status: int, code: int | None = None, message: str | None = None) -> _Reply:
    """An error in Twilio's legacy JSON shape, which the SDK turns into TwilioRestException."""
    code = code if code is not None else _DEFAULT_CODES.get(status, status)
    body = {
        "code": code,
        "message": message if message is not None else _DEFAULT_MESSAGES.get(status, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return _Reply(status, body)


def _rfc2822(moment: datetime) -> str:
    """Twilio's date format, e.g. "Mon, 23 Nov 2026 15:00:00 +0000"."""
    return email.utils.format_datetime(moment.replace(microsecond=0))


def _segments(body: str) -> int:
    """SMS segments as Twilio counts them: GSM-7 160/153 characters, else UCS-2 70/67."""
    if all(char in _GSM7 or char in _GSM7_EXTENDED for char in body):
        units = sum(2 if char in _GSM7_EXTENDED else 1 for char in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def _channel_address(value: str) -> tuple[bool, str]:
    """("whatsapp:" prefix present, the address after it)."""
    if value.startswith(WHATSAPP):
        return True, value[len(WHATSAPP) :]
    return False, value


def _customer(number: str) -> str:
    """The key of a WhatsApp customer's window: the E.164 number, without "whatsapp:"."""
    address = _channel_address(number)[1]
    if not _E164.fullmatch(address):
        raise ValueError(f"not a WhatsApp number: {number!r}")
    return address


def _content_variables(raw: str | None) -> dict[str, str] | None:
    """ContentVariables as Twilio accepts it, or None when Twilio answers 21656."""
    if raw is None:
        return {}
    try:
        variables = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(variables, dict):
        return None
    for key, value in variables.items():
        if not _VARIABLE_KEY.fullmatch(key) or not isinstance(value, str) or not value.strip():
            return None
    return variables


def _parse_date_filter(name: str, value: str) -> tuple[datetime, bool]:
    """A DateSent filter value: (moment in UTC, whether only the day counts)."""
    try:
        if _DATE_ONLY.fullmatch(value):
            return datetime.fromisoformat(value).replace(tzinfo=UTC), True
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"Invalid {name}: {value}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC), False
    return moment.astimezone(UTC), False


def _sent_at(message: dict[str, Any]) -> datetime:
    """The date DateSent filters compare: date_sent, or date_created while it is still null."""
    return email.utils.parsedate_to_datetime(message["date_sent"] or message["date_created"])


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hanging handler must never keep the test process alive
    request_queue_size = 256  # benchmarks open many connections at once
    allow_reuse_address = True

    def __init__(self, fake: FakeTwilio) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or hang up are expected here; anything else is a fake bug."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like api.twilio.com, so the pool is reused
    disable_nagle_algorithm = True  # headers and body are two writes: avoid a 40 ms stall

    def _server(self) -> _Server:
        return cast(_Server, self.server)

    def setup(self) -> None:
        super().setup()
        with self._server().connections_lock:
            self._server().connections.add(self.connection)

    def finish(self) -> None:
        with self._server().connections_lock:
            self._server().connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: benchmarks send thousands of requests."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client died mid-request: a server acts on no half body
            self.close_connection = True
            return
        raw = body.decode("utf-8")
        query = raw if method == "POST" else split.query
        params = dict(parse_qsl(query, keep_blank_values=True))
        recorded = Recorded(method, split.path, params, dict(self.headers.items()))
        reply = self._server().fake._handle(recorded, split.query)
        if reply is None:
            self.close_connection = True
            return
        payload = json.dumps(reply.body).encode("utf-8")
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client gave up (timeout) before the answer


class FakeTwilio:
    """The fake API server; use as a context manager (or start()/stop()).

    `requests` holds every request in arrival order and `messages` every created message
    resource (the dicts the API returns). Both are appended under a lock, so threads may read
    them while the server runs.
    """

    def __init__(self, latency: float = 0.0, faults: Faults | None = None) -> None:
        self.latency = latency  # seconds added to every request, for realistic benchmarks
        self.faults = faults  # random failures once the script is empty
        self.faults_served: Counter[str] = Counter()
        self._faults_of: Counter[str] = Counter()  # per number
        self._random = random.Random(faults.seed if faults else 0)
        self.account_sid = ACCOUNT_SID
        self.auth_token = AUTH_TOKEN
        self.requests: list[Recorded] = []
        self.messages: list[dict[str, Any]] = []
        # A free-form WhatsApp message outside the window: "reject" answers 400 63016 at once
        # (no message); "async" answers 201 queued and stores the message as failed, 63016.
        self.whatsapp_window_failure: Literal["reject", "async"] = "reject"
        self._contents: dict[str, str] = {}  # ContentSid -> template text
        self._customer_wrote: dict[str, datetime] = {}  # E.164 -> last inbound message
        self._lock = threading.Lock()
        self._script: deque[Respond] = deque()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> FakeTwilio:
        if self._server is not None:
            raise RuntimeError("FakeTwilio is already running")
        self._stopping = threading.Event()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="fake-twilio",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; wakes hanging handlers and cuts open keep-alive connections."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            connections = list(server.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        thread.join(timeout=5)

    @property
    def url(self) -> str:
        """The base URL to put in `client.api.base_url`, e.g. "http://127.0.0.1:41234"."""
        if self._server is None:
            raise RuntimeError("FakeTwilio is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def client(
        self,
        timeout: float | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        account_sid: str | None = None,
    ) -> Any:
        """A real `twilio.rest.Client` aimed at this fake; close `.http_client.session` after."""
        sdk = Client(
            username or self.account_sid,
            password or self.auth_token,
            account_sid=account_sid,
            http_client=TwilioHttpClient(timeout=timeout),
        )
        sdk.api.base_url = self.url
        sdk.edge = sdk.region = None  # TWILIO_EDGE / TWILIO_REGION would rewrite the host
        return sdk

    def script(self, *behaviours: Respond) -> None:
        """Queue answers for the next authenticated POST /Messages.json requests, in order.

        Calls add to the queue; once it is empty every POST gets Respond.created().
        """
        with self._lock:
            self._script.extend(behaviours)

    def posts(self) -> list[Recorded]:
        """Only the POST /Messages.json requests: the send attempts."""
        with self._lock:
            return [
                r for r in self.requests if r.method == "POST" and r.path.endswith("/Messages.json")
            ]

    def add_content(self, sid: str, text: str) -> None:
        """Register a Content template (as approved in Twilio's Content API): `text` with
        `{{1}}`, `{{2}}`... placeholders, which ContentVariables fill in the stored body."""
        if not _CONTENT_SID.fullmatch(sid):
            raise ValueError(f"a ContentSid is HX and 32 hex digits, not {sid!r}")
        with self._lock:
            self._contents[sid] = text

    def customer_wrote(self, number: str, at: datetime | None = None) -> None:
        """The WhatsApp customer `number` (with or without "whatsapp:") sent a message `at`
        (default: now on the fake's clock), opening the 24-hour window from then.

        A naive `at` is taken as UTC. An earlier `at` than one already known changes nothing:
        the window runs from the customer's last message.
        """
        key = _customer(number)
        moment = self._now() if at is None else at
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        with self._lock:
            known = self._customer_wrote.get(key)
            if known is None or moment > known:
                self._customer_wrote[key] = moment

    def set_status(self, sid: str, status: str, *, error_code: int | None = None) -> None:
        """Move a message on (e.g. "delivered", or "read" on WhatsApp), as Twilio would, so
        list and fetch show it.

        Sent-like statuses also fill date_sent, which then drives the DateSent filters.
        """
        now = _rfc2822(self._now())
        with self._lock:
            for message in self.messages:
                if message["sid"] == sid:
                    message["status"] = status
                    message["date_updated"] = now
                    if status in _SENT_STATUSES and message["date_sent"] is None:
                        message["date_sent"] = now
                    if error_code is not None:
                        message["error_code"] = error_code
                    return
        raise KeyError(sid)

    # -- request handling (runs on the server's handler threads) --

    def _handle(self, recorded: Recorded, query: str) -> _Reply | None:
        """Route one request; None means "close the connection without answering"."""
        with self._lock:
            self.requests.append(recorded)
        if self.latency > 0 and self._stopping.wait(self.latency):
            return None
        if not self._authorised(recorded.headers.get("Authorization")):
            reply = _error(401, 20003, "Authenticate")
            reply.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
            return reply
        route = _ROUTE.fullmatch(recorded.path)
        if route is None:
            return self._not_found(recorded.path)
        account, sid = route.groups()
        if account != self.account_sid:
            return self._not_found(recorded.path)
        if recorded.method == "POST" and sid is None:
            return self._create(recorded.params)
        if recorded.method == "GET" and sid is None:
            return self._list(recorded.path, query, recorded.params)
        if recorded.method == "GET":
            return self._fetch(recorded.path, sid)
        return _error(405, 20004, "Method not allowed")

    def _authorised(self, header: str | None) -> bool:
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return decoded == f"{self.account_sid}:{self.auth_token}"

    @staticmethod
    def _not_found(path: str) -> _Reply:
        return _error(404, 20404, f"The requested resource {path} was not found")

    def _create(self, params: dict[str, str]) -> _Reply | None:
        with self._lock:
            behaviour = self._script.popleft() if self._script else self._unscripted(params)
        if behaviour.kind == "error":
            reply = _error(behaviour.status, behaviour.code, behaviour.message)
            if behaviour.retry_after is not None:
                reply.headers["Retry-After"] = str(behaviour.retry_after)
            return reply
        accepted = self._check(params)
        if isinstance(accepted, _Reply):
            return accepted
        if behaviour.kind == "created":
            return _Reply(201, self._store(params, accepted))
        if behaviour.kind == "created_then_error":
            self._store(params, accepted)
            return _error(behaviour.status)
        if behaviour.kind == "drop":
            if behaviour.create:
                self._store(params, accepted)
            return None
        # hang
        sid = self._store(params, accepted)["sid"] if behaviour.create else None
        if self._stopping.wait(behaviour.seconds):
            return None
        if sid is None:
            return _Reply(201, self._store(params, accepted))
        return _Reply(201, self._snapshot(sid))

    def _unscripted(self, params: dict[str, str]) -> Respond:
        """A fault drawn from `faults` (called under the lock), else the normal answer."""
        to = params.get("To", "")
        faults = self.faults
        if faults is None or self._faults_of[to] >= faults.most_per_number:
            return Respond.created()
        if self._random.random() >= faults.rate:
            return Respond.created()
        name, behaviour = self._random.choice(sorted(faults.kinds().items()))
        self._faults_of[to] += 1
        self.faults_served[name] += 1
        return behaviour

    @staticmethod
    def _now() -> datetime:
        """The fake's clock: the wall clock, so freezegun and time-machine move it."""
        return datetime.now(UTC)

    def _check(self, params: dict[str, str]) -> _Reply | _Accepted:
        """The checks Twilio makes before accepting a message, with its error codes."""
        to = params.get("To", "")
        to_whatsapp, to_address = _channel_address(to)
        if not _E164.fullmatch(to_address):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        content_sid = params.get("ContentSid")
        if params.get("ContentVariables") is not None and not content_sid:
            return _error(
                400,
                21654,
                "A ContentSid must be specified if ContentVariables are provided in the request.",
            )
        if not params.get("Body") and not params.get("MediaUrl") and not content_sid:
            return _error(400, 21602, "Message body is required.")
        if content_sid and params.get("Body"):
            together = "ContentVariables" if "ContentVariables" in params else "ContentSid"
            return _error(400, 35127, f"'Messages' Body and {together} cannot be provided together")
        if len(params.get("Body", "")) > 1600:
            return _error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        service = params.get("MessagingServiceSid")
        if not params.get("From") and not service:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not service:
            from_whatsapp, from_address = _channel_address(params["From"])
            if to_whatsapp and (not from_whatsapp or not _E164.fullmatch(from_address)):
                return _error(
                    400, 63007, "Twilio could not find a Channel with the specified From address"
                )
            if from_whatsapp and not to_whatsapp:
                return _error(400, 63003, "Channel could not find To address")
        if content_sid:
            return self._check_content(params, content_sid, to_whatsapp)
        body = params.get("Body", "")
        if to_whatsapp and not self._window_open(to_address):
            if self.whatsapp_window_failure != "async":
                return _error(400, 63016, OUTSIDE_WINDOW)
            return _Accepted(body, whatsapp=True, failure=(63016, OUTSIDE_WINDOW))
        return _Accepted(body, whatsapp=to_whatsapp)

    def _check_content(
        self, params: dict[str, str], content_sid: str, whatsapp: bool
    ) -> _Reply | _Accepted:
        """A Content template send: the body is the template with its variables filled in."""
        if not _CONTENT_SID.fullmatch(content_sid):
            return _error(400, 21655, "The ContentSid is Invalid")
        variables = _content_variables(params.get("ContentVariables"))
        if variables is None:
            return _error(400, 21656, "The Content Variables parameter is invalid.")
        with self._lock:
            template = self._contents.get(content_sid)
        if template is None:
            return _error(400, 21655, "The ContentSid is Invalid")
        if set(_PLACEHOLDER.findall(template)) != set(variables):
            return _error(
                400,
                63028,
                "Number of parameters provided does not match the expected number of parameters",
            )
        body = _PLACEHOLDER.sub(lambda match: variables[match.group(1)], template)
        if whatsapp and len(body) > WHATSAPP_CONTENT_LIMIT:
            return _error(400, 63021, "Channel invalid content error")
        if len(body) > 1600:
            return _error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        return _Accepted(body, whatsapp=whatsapp)

    def _window_open(self, customer: str) -> bool:
        """Whether the customer wrote within the last 24 hours (the window closes at 24 h)."""
        with self._lock:
            wrote = self._customer_wrote.get(customer)
        return wrote is not None and self._now() - wrote < WHATSAPP_WINDOW

    def _store(self, params: dict[str, str], accepted: _Accepted) -> dict[str, Any]:
        """Create the message resource as Twilio returns it, and keep it for list/fetch.

        The answer is the message as created; one that fails after the 201 is stored failed.
        """
        sid = "SM" + uuid.uuid4().hex
        now = _rfc2822(self._now())
        service = params.get("MessagingServiceSid") or None
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        body = accepted.body
        if service:
            segments = "0"
        elif accepted.whatsapp:
            segments = "1"  # WhatsApp does not split messages
        else:
            segments = str(_segments(body))
        message: dict[str, Any] = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": params.get("From") or None,
            "messaging_service_sid": service,
            # Twilio reports 0 segments until a Messaging Service has picked the sender.
            "num_media": "0",
            "num_segments": segments,
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": params["To"],
            "uri": uri,
        }
        answer = dict(message)
        if accepted.failure is not None:
            message["status"] = "failed"
            message["error_code"], message["error_message"] = accepted.failure
        with self._lock:
            self.messages.append(message)
        return answer

    def _snapshot(self, sid: str) -> dict[str, Any]:
        with self._lock:
            for message in self.messages:
                if message["sid"] == sid:
                    return dict(message)
        raise KeyError(sid)

    def _fetch(self, path: str, sid: str) -> _Reply:
        try:
            return _Reply(200, self._snapshot(sid))
        except KeyError:
            return self._not_found(path)

    def _list(self, path: str, query: str, params: dict[str, str]) -> _Reply:
        """One page of messages, newest first, filtered like Twilio's Message list.

        Simplification: DateSent filters use date_created while date_sent is still null
        (Twilio itself filters on date sent). Values may be "YYYY-MM-DD" (whole days, as the
        docs describe) or the SDK's "YYYY-MM-DDTHH:MM:SSZ"; DateSent> and DateSent< include
        their bound ("on and after", "on and before"). Only one page is served: next_page_uri
        is always null, so more than PageSize matches are cut off.
        """
        try:
            bounds = {
                name: _parse_date_filter(name, params[name])
                for name in ("DateSent", "DateSent>", "DateSent<")
                if params.get(name)
            }
            page_size = int(params.get("PageSize") or 50)
        except ValueError as exc:
            return _error(400, 20001, str(exc))
        if not 1 <= page_size <= 1000:
            return _error(400, 20001, f"Invalid PageSize: {page_size}")

        def matches(message: dict[str, Any]) -> bool:
            if params.get("To") and message["to"] != params["To"]:
                return False
            if params.get("From") and message["from"] != params["From"]:
                return False
            sent = _sent_at(message)
            for name, (bound, whole_day) in bounds.items():
                left: Any = sent.date() if whole_day else sent
                right: Any = bound.date() if whole_day else bound
                if name == "DateSent" and left != right:
                    return False
                if name == "DateSent>" and left < right:
                    return False
                if name == "DateSent<" and left > right:
                    return False
            return True

        with self._lock:
            ordered = sorted(
                enumerate(self.messages),
                key=lambda item: (_sent_at(item[1]), item[0]),
                reverse=True,
            )
            found = [dict(message) for _, message in ordered if matches(message)][:page_size]
        first = {k: v for k, v in params.items() if k not in ("Page", "PageToken")}
        first.update({"PageSize": str(page_size), "Page": "0"})
        body = {
            "messages": found,
            "end": max(len(found) - 1, 0),
            "first_page_uri": f"{path}?{urlencode(first)}",
            "next_page_uri": None,
            "page": 0,
            "page_size": page_size,
            "previous_page_uri": None,
            "start": 0,
            "uri": f"{path}?{query}" if query else path,
        }
        return _Reply(200, body)
