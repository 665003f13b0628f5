"""A reply as the webhook stores it: one INSERT, the whole of its write, run on the database
driver's own cursor.

Compiled once for each kind of database and its values converted as SQLAlchemy would write
them (`bulk_writes.processor`): SQLAlchemy's execution of this one statement was two thirds of
a stored reply's CPU in the webhook (156 µs of a core a reply; 77 on the cursor), and a
gunicorn worker does little else for most replies (`bench/README.md`, "The webhook").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from scheduler.bulk_writes import processor
from scheduler.lifecycle import Channel, Direction, MessageStatus
from scheduler.models import Base

MESSAGES = Base.metadata.tables["messages"]
COLUMNS = (
    "direction",
    "channel",
    "from_address",
    "to_address",
    "body",
    "provider_id",
    "status",
    "created_at",
    "status_updated_at",
    "button_payload",
)


@dataclass(frozen=True)
class InboundMessage:
    provider_id: str  # Twilio's MessageSid
    sender: str  # From, as Twilio sends it ("whatsapp:+51..." on WhatsApp)
    recipient: str  # To: our number
    body: str
    channel: Channel = Channel.SMS
    button_payload: str | None = None  # a WhatsApp quick-reply button pressed


@dataclass(frozen=True)
class _Compiled:
    text: str
    order: Sequence[str] | None  # the values' order for a positional driver (SQLite's "?")
    processors: Mapping[str, Callable[[Any], Any]]


_COMPILED: dict[tuple[str, str], _Compiled] = {}


def _compiled(dialect: Dialect) -> _Compiled:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id, in `dialect`'s words."""
    key = (dialect.name, dialect.driver)
    if key not in _COMPILED:
        insert = postgresql_insert if dialect.name == "postgresql" else sqlite_insert
        statement = (
            insert(MESSAGES)
            .values({name: bindparam(name) for name in COLUMNS})
            .on_conflict_do_nothing(index_elements=["provider_id"])
            .returning(MESSAGES.c.id)
        )
        compiled = statement.compile(dialect=dialect)
        processors = {
            name: process
            for name in COLUMNS
            if (process := processor(MESSAGES.c[name].type, dialect)) is not None
        }
        order = compiled.positiontup if compiled.positional else None
        _COMPILED[key] = _Compiled(compiled.string, order, processors)
    return _COMPILED[key]


def insert_reply(connection: Connection, sms: InboundMessage, *, now: datetime) -> int | None:
    """The new message's id, or None for a retry (one statement, whichever of two racing
    deliveries wins), in the connection's transaction if it has begun one; errors are the
    driver's own."""
    compiled = _compiled(connection.dialect)
    values: dict[str, Any] = {
        "direction": Direction.INBOUND,
        "channel": sms.channel,
        "from_address": sms.sender,
        "to_address": sms.recipient,
        "body": sms.body,
        "provider_id": sms.provider_id,
        "status": MessageStatus.RECEIVED,
        "created_at": now,
        "status_updated_at": now,
        "button_payload": sms.button_payload,
    }
    for name, process in compiled.processors.items():
        values[name] = process(values[name])
    parameters = values if compiled.order is None else [values[name] for name in compiled.order]
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.text, parameters)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return None if row is None else int(row[0])
