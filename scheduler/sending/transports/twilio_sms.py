"""SMS and WhatsApp through the official `twilio` client, on the same Messages API; requests go
to `twilio.api_base_url`."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from scheduler.clock import utcnow
from scheduler.config import TwilioConfig, WhatsappConfig
from scheduler.lifecycle import Channel
from scheduler.sending.transports.base import Failure, Outgoing, Sent, TransportError
from scheduler.sending.transports.twilio_codes import reports_unsubscribed

TWILIO_API = "https://api.twilio.com"


def _failure_of_http(error: TwilioRestException) -> Failure:
    if error.status == 429:  # REST concurrency exceeded: never processed
        return Failure.RETRY
    if error.status >= 500:  # may or may not have been created
        return Failure.UNCERTAIN
    if error.status in (401, 403):  # credentials: nothing was sent, and fixing them helps
        return Failure.RETRY
    if reports_unsubscribed(str(error.code)):
        return Failure.UNSUBSCRIBED
    return Failure.PERMANENT


def _wait_asked(header: str | None) -> timedelta | None:
    """A 429's Retry-After: delay-seconds or an HTTP-date (RFC 9110, 10.2.3); anything else is
    ignored, and the usual backoff applies."""
    value = (header or "").strip()
    if value.isdigit():
        return timedelta(seconds=min(int(value), 86_400))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(timedelta(0), moment - utcnow())


def _never_connected(error: requests.RequestException) -> bool:
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(error, requests.ConnectTimeout) or isinstance(reason, NewConnectionError)


class TwilioSms:
    """One client per thread (the SDK's HTTP session is not meant to be shared across threads)."""

    channel = Channel.SMS
    parallel = True

    def __init__(self, config: TwilioConfig, public_url: str, timeout: float) -> None:
        self._config = config
        self._timeout = timeout
        self._local = threading.local()
        self._callback = f"{public_url.rstrip('/')}/webhooks/twilio/status"
        self.sender = config.from_number or config.messaging_service_sid
        self.max_per_second = config.max_per_second

    def _client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            hooks = {"response": [self._remember_wait]}
            http = TwilioHttpClient(timeout=self._timeout, request_hooks=hooks)
            client = Client(self._config.account_sid, self._config.auth_token, http_client=http)
            base_url = self._config.api_base_url.rstrip("/")
            if base_url != TWILIO_API:
                # TWILIO_EDGE / TWILIO_REGION would rewrite the host of a proxy or a test server.
                client.edge = client.region = None
            client.api.base_url = base_url
            self._local.client = client
        return client

    def _remember_wait(self, response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        """The SDK's error keeps no headers: note this thread's last Retry-After here."""
        self._local.retry_after = response.headers.get("Retry-After")

    def _sender(self) -> dict[str, str]:
        if self._config.from_number:
            return {"from_": self._config.from_number}
        return {"messaging_service_sid": self._config.messaging_service_sid}

    @staticmethod
    def _content(message: Outgoing) -> dict[str, str]:
        return {"body": message.text}

    def send(self, message: Outgoing) -> Sent:
        callback = message.status_callback or self._callback
        try:
            created = self._client().messages.create(
                to=message.to,
                status_callback=callback,
                **self._sender(),
                **self._content(message),
            )
        except TwilioRestException as error:
            asked = _wait_asked(self._local.retry_after) if error.status == 429 else None
            raise TransportError(
                error.msg,
                failure=_failure_of_http(error),
                code=str(error.code or error.status),
                retry_after=asked,
            ) from error
        except requests.RequestException as error:
            failure = Failure.RETRY if _never_connected(error) else Failure.UNCERTAIN
            raise TransportError(f"Twilio: {type(error).__name__}", failure=failure) from error
        return Sent(str(created.sid), str(created.status))

    def find(self, message: Outgoing, since: datetime) -> Sent | None:
        """Twilio has no idempotency key: look for a message to the same number with the same
        body created since the first attempt (newest first, so the window is small)."""
        try:
            recent = self._client().messages.list(to=message.to, limit=50)
        except (TwilioException, requests.RequestException) as error:  # list errors are plain
            raise TransportError(
                f"Twilio lookup failed: {error}", failure=Failure.UNCERTAIN
            ) from error
        since_then = [m for m in recent if m.date_created is not None and m.date_created >= since]
        for found in since_then:
            if found.body == message.text:
                return Sent(str(found.sid), str(found.status))
        if since_then:  # something else went to this number: it may be ours, altered on the way
            raise TransportError(
                f"{len(since_then)} other message(s) to {message.to} since the first attempt",
                failure=Failure.UNCERTAIN,
            )
        return None


class TwilioWhatsApp(TwilioSms):
    """WhatsApp on the same API: `whatsapp:` addresses, and outside the customer's 24-hour
    window an approved Content template instead of free text (Twilio refuses that with 63016)."""

    channel = Channel.WHATSAPP

    def __init__(
        self, config: TwilioConfig, whatsapp: WhatsappConfig, public_url: str, timeout: float
    ) -> None:
        super().__init__(config, public_url, timeout)
        self._from = whatsapp.from_number
        self.sender = whatsapp.from_number or config.messaging_service_sid
        self.max_per_second = whatsapp.max_per_second

    def _sender(self) -> dict[str, str]:
        if self._from:
            return {"from_": self._from}
        return {"messaging_service_sid": self._config.messaging_service_sid}

    @staticmethod
    def _content(message: Outgoing) -> dict[str, str]:
        if message.content_sid is None:
            return {"body": message.text}
        variables = json.dumps(message.content_variables or {}, ensure_ascii=False)
        return {"content_sid": message.content_sid, "content_variables": variables}
