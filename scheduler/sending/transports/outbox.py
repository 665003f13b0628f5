"""The embedded default transport: keeps each message in the `outbox` table, sends nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.lifecycle import Channel
from scheduler.models import Base, OutboxEntry
from scheduler.sending.transports.base import Outgoing, Sent

OUTBOX = Base.metadata.tables["outbox"]
STORE = insert(OUTBOX).returning(OUTBOX.c.id)  # built once: a send is this INSERT and a commit
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
    """Each stored message commits on its own, like a provider that accepted it."""

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
        row = {
            "reference": message.reference,
            "channel": self.channel,
            "to_address": message.to,
            "from_address": self.sender,
            "subject": message.subject,
            "body": message.text,
            "html_body": message.html,
            "headers": message.headers | _content_of(message),
            "created_at": self._clock(),
        }
        with self._sessions.begin() as session:
            entry_id = session.scalar(STORE, row)
        return Sent(f"outbox-{entry_id}", "stored")

    def find(self, message: Outgoing, since: datetime) -> Sent | None:
        with self._sessions() as session:
            found = session.scalar(
                select(OutboxEntry.id)
                .where(OutboxEntry.reference == message.reference, OutboxEntry.created_at >= since)
                .order_by(OutboxEntry.id)
                .limit(1)
            )
        return None if found is None else Sent(f"outbox-{found}", "stored")
