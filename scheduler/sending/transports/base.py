"""What every transport offers dispatch: send a message, or find one that may have been sent.

A send fails in one of three ways, and dispatch must treat them differently: the provider said
no for good (`PERMANENT`), the message certainly did not leave and may be tried again (`RETRY`),
or nobody knows whether it left (`UNCERTAIN`: a timeout after the request went out, a 5xx). The
last must never be resent before `find` has looked for it. `UNSUBSCRIBED` is a permanent refusal
that also says the recipient opted out with the provider (Twilio's STOP): we record it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from scheduler.lifecycle import Channel

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Outgoing:
    """One message ready to hand to a transport."""

    reference: str  # our own id, stable across attempts: "follow-up:12"
    channel: Channel
    to: str
    text: str
    subject: str | None = None
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # extra email headers
    status_callback: str | None = None  # where the provider reports delivery (SMS, WhatsApp)
    # WhatsApp outside the 24-hour window: an approved Content template and its variables
    # ("1", "2", ...), sent instead of `text` (which is the same message, as we render it).
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None


@dataclass(frozen=True)
class Sent:
    provider_id: str
    status: str  # the provider's first status: queued, accepted, sent, stored


class Failure(StrEnum):
    PERMANENT = "permanent"
    RETRY = "retry"
    UNCERTAIN = "uncertain"
    UNSUBSCRIBED = "unsubscribed"  # for good: the recipient told the provider to stop us


class TransportError(Exception):
    """A send or a lookup that did not work; `code` is the provider's error code, if any, and
    `retry_after` how long the provider asked us to wait before trying again (HTTP 429)."""

    def __init__(
        self,
        message: str,
        *,
        failure: Failure,
        code: str | None = None,
        retry_after: timedelta | None = None,
    ) -> None:
        super().__init__(message)
        self.failure = failure
        self.code = code
        self.retry_after = retry_after

    def __str__(self) -> str:
        text = super().__str__()
        return f"{self.code}: {text}" if self.code else text


class Transport(Protocol):
    channel: Channel
    sender: str  # the From of what it sends; also the key of the per-sender rate limit
    max_per_second: float  # 0: no limit
    parallel: bool  # sends wait on a network, so several in flight at once pay off

    def send(self, message: Outgoing) -> Sent:
        """Hand the message over, or raise TransportError."""
        ...

    def find(self, message: Outgoing, since: datetime) -> Sent | None:
        """The copy of `message` sent since `since`, None if certainly none, else TransportError."""
        ...


@runtime_checkable
class StoresInTransaction(Protocol):
    """A transport whose send is itself a write to our database (the outbox): a batch of sends
    can share the caller's transaction with the hand-over and the result, so a crash leaves
    all of them or none, and nothing is left to look up."""

    def store(self, session: Session, messages: list[Outgoing]) -> list[Sent]:
        """Send `messages` within `session`'s transaction; what each became, in order."""
        ...
