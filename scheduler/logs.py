"""The processes' log on standard error: a readable line per record by default, one JSON
object per line with `[logging] format = "json"` (for a log collector).

Events are records with fields: `event(log, "follow_up.sent", follow_up_id=..., ...)`. Unless
`[logging] personal_data = true`, phone numbers and email addresses are masked in every line,
and the fields that hold personal data (a body, an address) are left out: a log is kept longer,
copied further and read by more people than the database, and erasing a customer cannot reach it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session

from scheduler.config import LoggingConfig

PERSONAL_FIELDS = frozenset({"body", "subject", "name", "phone", "email", "address", "to"})
HIDDEN = "[hidden]"
_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+\d[\d ().-]{5,20}\d")  # as stored (E.164) or as a person wrote it
# Libraries that say at INFO what is routine: APScheduler each job run (every few seconds);
# Twilio's client each request with its parameters, the recipient and the words among them.
QUIET = {"apscheduler": logging.WARNING, "twilio.http_client": logging.WARNING}


def mask(text: str) -> str:
    """The text with phone numbers and email addresses masked."""
    return _PHONE.sub("+[phone]", _EMAIL.sub("[email]", text))


def event(logger: logging.Logger, name: str, /, level: int = logging.INFO, **fields: Any) -> None:
    """Log the event `name` with its fields (ids, outcome, duration...)."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"event": name, "fields": fields})


_COMMITTED = "events_on_commit"
_log = logging.getLogger("postventa")


def on_commit(session: Session, name: str, /, **fields: Any) -> None:
    """Log the event `name` once the session's transaction commits (never, if it rolls back):
    the log says what the database kept."""
    session.info.setdefault(_COMMITTED, []).append((name, fields))


def kept(name: str, /, **fields: Any) -> None:
    """Log the event `name` of a write the database has kept (committed), as `on_commit` logs
    its own at the commit."""
    event(_log, name, **fields)


@sqlalchemy_event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for name, fields in session.info.pop(_COMMITTED, ()):
        kept(name, **fields)


@sqlalchemy_event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_COMMITTED, None)


class LineFormatter(logging.Formatter):
    """One record per line (a traceback follows a text line; inside a JSON one it is a field)."""

    def __init__(self, *, as_json: bool, personal_data: bool) -> None:
        super().__init__()
        self.as_json = as_json
        self.personal_data = personal_data

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        fields: dict[str, Any] = dict(getattr(record, "fields", {}))
        error = self.formatException(record.exc_info) if record.exc_info else None
        if not self.personal_data:
            message = mask(message)
            error = mask(error) if error else None
            fields = {
                key: mask(value) if isinstance(value, str) else value
                for key, value in fields.items()
                if key not in PERSONAL_FIELDS
            }
        at = datetime.fromtimestamp(record.created, UTC)
        if self.as_json:
            line: dict[str, Any] = {
                "time": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname.lower(),
                "logger": record.name,
            }
            if hasattr(record, "event"):
                line["event"] = record.event
            else:
                line["message"] = message
            line |= fields
            if error:
                line["error"] = error
            return json.dumps(line, ensure_ascii=False, default=str)
        said = " ".join([message, *(f"{key}={value}" for key, value in fields.items())])
        text = f"{at:%Y-%m-%d %H:%M:%S} {record.levelname} {record.name}: {said}"
        return f"{text}\n{error}" if error else text


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the standard error of the moment (a test or a daemon may replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(config: LoggingConfig) -> None:
    """Send every logger's records to standard error as `[logging]` says. Called again (a
    test, a second command in one process) it replaces its own handler, no other."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(
        LineFormatter(as_json=config.format == "json", personal_data=config.personal_data)
    )
    root.addHandler(handler)
    root.setLevel(config.level.upper())
    for name, level in QUIET.items():
        logging.getLogger(name).setLevel(max(level, root.level))
