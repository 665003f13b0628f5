"""The copy of what went out that the outbox's words are searched in, on PostgreSQL (migration
0041): each outbound text waits at its send (one small index entry) and is copied into the
trigram-indexed `outbound_texts` later, by a job of the worker every few seconds, a batch a
transaction. Writing every text's trigrams at the send was a sixth of a send's CPU.

A search reads the copies' index and the texts still waiting, and keeps only the messages whose
own text holds the words: never a message missed for not being copied yet, nor one found by
words its copy has and it no longer has. SQLite keeps no copy: its searches read the
messages."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Select,
    Table,
    Text,
    delete,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from scheduler.db import Among
from scheduler.models import Message
from scheduler.paging import count_up_to

_TABLES = MetaData()  # not the models': SQLite has neither table
OUTBOUND_TEXTS = Table(
    "outbound_texts",
    _TABLES,
    Column("message_id", Integer, primary_key=True),
    Column("body", Text, nullable=False),
)
WAITING = Table("outbound_texts_waiting", _TABLES, Column("message_id", Integer, primary_key=True))

COPIED_AT_ONCE = 2_000  # texts copied a transaction


def kept(session: Session) -> bool:
    """Whether this database keeps the copy (PostgreSQL's alone)."""
    return session.get_bind().dialect.name == "postgresql"


def copy_waiting(session: Session, limit: int = COPIED_AT_ONCE) -> int:
    """Copy up to `limit` waiting texts, the oldest first, skipping those another worker is
    copying; how many were taken (a message deleted meanwhile is taken and not copied).
    0 on SQLite, which keeps no copy."""
    if not kept(session):
        return 0
    taking = (
        select(WAITING.c.message_id)
        .order_by(WAITING.c.message_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("taking")  # a CTE: a LIMIT subquery may run more than once (see leases.claim)
    )
    taken = list(
        session.scalars(
            delete(WAITING)
            .where(Among(WAITING.c.message_id, select(taking.c.message_id)))
            .returning(WAITING.c.message_id)
        )
    )
    if taken:
        copies = insert(OUTBOUND_TEXTS).from_select(
            ["message_id", "body"], select(Message.id, Message.body).where(Among(Message.id, taken))
        )
        # A copy made by a worker that read the text before it changed: renewed.
        session.execute(
            copies.on_conflict_do_update(
                index_elements=["message_id"], set_={"body": copies.excluded.body}
            )
        )
    return len(taken)


def holding(session: Session, word: str, most: int) -> Select[tuple[int]] | None:
    """The outbound messages whose copy holds `word`, with the waiting ones whose text holds
    it, as a query of their ids; None when more than `most` do (a common word: found soonest
    by reading the messages, the newest first). Counted here, one row read: the ids are read
    where the messages are. The caller checks each message's own text."""
    copied = select(OUTBOUND_TEXTS.c.message_id).where(
        OUTBOUND_TEXTS.c.body.icontains(word, autoescape=True)
    )
    waiting = (
        select(Message.id)
        .join(WAITING, WAITING.c.message_id == Message.id)
        .where(Message.body.icontains(word, autoescape=True))
    )
    found = union_all(copied, waiting).subquery("holding")
    if count_up_to(session, select(found), most) > most:
        return None
    return select(found.c.message_id)
