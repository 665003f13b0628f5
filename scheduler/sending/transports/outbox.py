"""The embedded default transport: keeps each message in the `outbox` table, sends nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.bulk_writes import insert_ids
from scheduler.lifecycle import Channel
from scheduler.models import Base, OutboxEntry
from scheduler.sending.transports.base import Outgoing, Sent

OUTBOX = Base.metadata.tables["outbox"]
SENDERS = {
    Channel.SMS: "outbox-sms",
    Channel.EMAIL: "outbox@postventa.invalid",
    Channel.WHATSAPP: "whatsapp:outbox",
}


def _content_of(message: Outgoing) -> dict[str, str]:
    """A WhatsApp Content template, kept as Twilio would be asked for it."""
    if message.content_sid is None:
        return {}
    variables = json.dumps(message.content_variables or {}, ensure_ascii=False)
    return {"ContentSid": message.content_sid, "ContentVariables": variables}


class OutboxTransport:
    """A message sent on its own commits on its own, like a provider that accepted it; a batch
    stored in dispatch's transaction (`store`) commits with its hand-over and its result."""

    max_per_second = 0.0
    parallel = False  # a local insert: threads would only take turns at SQLite and the GIL

    def __init__(
        self, channel: Channel, sessions: sessionmaker[Session], clock: Callable[[], datetime]
    ) -> None:
        self.channel = channel
        self.sender = SENDERS[channel]
        self._sessions = sessions
        self._clock = clock

    def send(self, message: Outgoing) -> Sent:
        with self._sessions.begin() as session:
            return self.store(session, [message])[0]

    def store(self, session: Session, messages: list[Outgoing]) -> list[Sent]:
        now = self._clock()
        rows = [self._row(message, now) for message in messages]
        return [Sent(f"outbox-{id_}", "stored") for id_ in insert_ids(session, OUTBOX, rows)]

    def _row(self, message: Outgoing, now: datetime) -> dict[str, object]:
        return {
            "reference": message.reference,
            "channel": self.channel,
            "to_address": message.to,
            "from_address": self.sender,
            "subject": message.subject,
            "body": message.text,
            "html_body": message.html,
            "headers": message.headers | _content_of(message),
            "created_at": now,
        }

    def find(self, message: Outgoing, since: datetime) -> Sent | None:
        with self._sessions() as session:
            found = session.scalar(
                select(OutboxEntry.id)
                .where(OutboxEntry.reference == message.reference, OutboxEntry.created_at >= since)
                .order_by(OutboxEntry.id)
                .limit(1)
            )
        return None if found is None else Sent(f"outbox-{found}", "stored")
