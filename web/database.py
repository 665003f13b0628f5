"""What each request reaches through the app: configuration and a database session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from flask import abort, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.routing import IntegerConverter, Map

from scheduler.config import Config
from scheduler.db import MAX_ID, side_by_side
from scheduler.settings import LiveSettings


@dataclass(frozen=True)
class Postventa:
    """The app's services, kept in `app.extensions` so that a test can build its own."""

    settings: LiveSettings
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def config(self) -> Config:
        """The configuration in force: the file's, with the owner's edits from the admin."""
        return self.settings.current()


def services() -> Postventa:
    postventa: Postventa = current_app.extensions["postventa"]
    return postventa


def db_session() -> Session:
    """The request's session, opened on first use and closed when the request ends."""
    if "db_session" not in g:
        g.db_session = services().sessions()
    session: Session = g.db_session
    return session


def reading_session() -> Session:
    """The request's session for a long read (a page of figures, a list to download): what it
    did so far is committed, and it goes on as a plain reader's, so that on SQLite it holds no
    write lock meanwhile (a customer's STOP, the worker's sends go on); on PostgreSQL it reads
    as the dashboard's parts do (`side_by_side`)."""
    session = db_session()
    session.commit()
    side_by_side(session)
    return session


def close_session(_error: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


M = TypeVar("M")


def get_or_404(model: type[M], ident: Any, *, lock: bool = False) -> M:
    """The row, or the page answers 404; `lock` for a change two people may make at once (they
    take turns, and the second sees what the first did)."""
    row = db_session().get(model, ident, with_for_update=lock)
    if row is None:
        abort(404)
    return row


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: an id beyond what the database holds is a 404 like any
    other missing row, not an overflow in the driver."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def as_id(text: str) -> int | None:
    """The id written in `text` (from a form or a query string), or None when it is not a
    whole number that a row's id could be."""
    if not (text.isascii() and text.isdigit()) or len(text.lstrip("0")) > len(str(MAX_ID)):
        return None
    number = int(text)
    return number if number <= MAX_ID else None
