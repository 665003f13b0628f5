"""The audit log: who changed what, when, and why; and its pages, filtered by who, what and
when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from scheduler.figures.period import Period
from scheduler.logs import on_commit
from scheduler.models import AuditEntry
from scheduler.paging import Cursor, beyond, cut


def by_user(user_id: int) -> str:
    """How the log names a person who logged in."""
    return f"user:{user_id}"


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: int | None = None,
    **details: Any,
) -> AuditEntry:
    """Add an audit entry to the session; it is committed with the change it describes, and
    logged as an event once it is (the details, which may name a person, stay in the table)."""
    entry = AuditEntry(
        at=at,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        details=details,
    )
    session.add(entry)
    on_commit(session, action, actor=actor, entity_type=entity_type, entity_id=entity_id)
    return entry


PAGE = 100  # entries a page of the log
MACHINES = ("worker", "customer", "twilio", "mailbox", "cli", "init", "setup", "demo")


@dataclass(frozen=True)
class AuditFilter:
    """Which entries of the log to show; the empty filter is all of them."""

    who: str | None = None  # as the log names them ("user:3"), or one of MACHINES, any of it
    action: str = ""  # actions starting with this ("case.")
    entity_type: str | None = None
    entity_id: int | None = None
    days: Period | None = None  # local days


def entries(
    session: Session, wanted: AuditFilter, *, after: Cursor | None = None, size: int | None = None
) -> tuple[list[AuditEntry], Cursor | None]:
    """A page of the entries the filter keeps, the newest first, starting after `after`; and
    where the next page starts (None on the last)."""
    size = size or PAGE
    query = select(AuditEntry)
    if wanted.who is not None:
        instances = AuditEntry.actor.startswith(f"{wanted.who}:", autoescape=True)
        query = query.where(
            or_(AuditEntry.actor == wanted.who, instances)
            if wanted.who in MACHINES
            else AuditEntry.actor == wanted.who
        )
    if wanted.action:
        query = query.where(AuditEntry.action.startswith(wanted.action, autoescape=True))
    if wanted.entity_type is not None:
        query = query.where(AuditEntry.entity_type == wanted.entity_type)
    if wanted.entity_id is not None:
        query = query.where(AuditEntry.entity_id == wanted.entity_id)
    if wanted.days is not None:
        query = query.where(AuditEntry.at >= wanted.days.start, AuditEntry.at < wanted.days.end)
    if after is not None:
        query = query.where(beyond(AuditEntry.at, AuditEntry.id, after, newest_first=True))
    newest = query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(size + 1)
    return cut(session.scalars(newest).all(), size, lambda entry: (entry.at, entry.id))
