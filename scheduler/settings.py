"""The configuration in force: the file's (and the environment's), with the owner's edits from
the admin on top.

Only keys an owner may reasonably change from a browser are editable (`EDITABLE`): the business,
cases, keyword answers, WhatsApp's Content templates, pacing and remedies; never the database,
credentials or transports. An
edit is validated exactly like the file and stored only where it differs from the file, so a
key the owner never touched still follows the file. Every process re-reads the edits at most
every few seconds (`LiveSettings`), so the web app and the workers follow an edit without a
restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler import audit
from scheduler.config import Config, ConfigError, as_raw
from scheduler.db import make_session_factory
from scheduler.models import Setting

log = logging.getLogger(__name__)

EDITABLE: dict[str, tuple[str, ...]] = {
    "business": ("name", "timezone", "locale", "send_window", "send_days", "review_url"),
    "cases": (
        "first_response_hours",
        "opening_hours",
        "notify_emails",
        "notify_sms",
        "escalate_to",
        "escalation_levels",
        "acknowledge",
        "routine_words",
    ),
    "sms": ("keyword_replies",),
    "whatsapp": ("prefer_over_sms", "content_sids"),
    "cadences": ("min_gap_hours", "late_grace_hours"),
    "remedies": ("staff_max_discount_percent", "staff_max_refund", "staff_may_replace"),
}
REFRESH_SECONDS = 5.0
Overrides = dict[str, dict[str, Any]]


class SettingsError(ValueError):
    """Edits that cannot be saved: `problems` maps "section.key" (or "" for a rule across
    keys) to what is wrong, in words for the form."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__(
            "; ".join(f"{key}: {text}" if key else text for key, text in problems.items())
        )
        self.problems = problems


def raw_value(config: Config, section: str, key: str) -> Any:
    """A key's value as the file would write it."""
    return as_raw(getattr(getattr(config, section), key))


def load_overrides(session: Session) -> Overrides:
    overrides: Overrides = {}
    for row in session.scalars(select(Setting)):
        if row.key in EDITABLE.get(row.section, ()):
            overrides.setdefault(row.section, {})[row.key] = row.value
    return overrides


def apply(base: Config, overrides: Overrides) -> Config:
    """`base` with the owner's edits; an edit no longer valid (a rule tightened by an upgrade)
    is skipped with a warning rather than stopping every process."""
    if not overrides:
        return base
    try:
        return base.replace(**overrides)
    except ConfigError:
        good: Overrides = {}
        for section, values in overrides.items():
            for key, value in values.items():
                try:
                    base.replace(**{section: {key: value}})
                except ConfigError as error:
                    log.warning("ignoring the admin's setting %s.%s: %s", section, key, error)
                    continue
                good.setdefault(section, {})[key] = value
        try:
            return base.replace(**good)
        except ConfigError as error:  # valid alone, not together: the file's values rule
            log.warning("ignoring the admin's settings: %s", error)
            return base


def _problem(error: ConfigError, base: Config, section: str, key: str, value: Any) -> str:
    """The validator's message without the "file: section.key 'value': " it starts with."""
    text = str(error).splitlines()[0]
    prefix = f"{base.source}: {section}.{key} {value!r}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def check(base: Config, edits: Overrides) -> Config:
    """The configuration these edits would give; raises SettingsError naming each bad key."""
    problems: dict[str, str] = {}
    for section, values in edits.items():
        for key, value in values.items():
            if key not in EDITABLE.get(section, ()):
                problems[f"{section}.{key}"] = "cannot be changed from the admin"
                continue
            try:
                base.replace(**{section: {key: value}})
            except ConfigError as error:
                problems[f"{section}.{key}"] = _problem(error, base, section, key, value)
    if problems:
        raise SettingsError(problems)
    try:
        return base.replace(**edits)
    except ConfigError as error:
        raise SettingsError({"": str(error).replace(f"{base.source}: ", "")}) from None


def save(session: Session, base: Config, edits: Overrides, *, actor: str, now: datetime) -> Config:
    """Validate and store the owner's edits of `base` (the file's configuration); keys set back
    to the file's value stop being overridden. Returns the configuration now in force. The
    caller commits."""
    current = apply(base, load_overrides(session))
    result = check(base, edits)
    changed: dict[str, dict[str, Any]] = {}
    for section, values in edits.items():
        for key in values:
            new, before = raw_value(result, section, key), raw_value(current, section, key)
            if new != before:
                changed[f"{section}.{key}"] = {"from": before, "to": new}
            session.execute(delete(Setting).where(Setting.section == section, Setting.key == key))
            if new != raw_value(base, section, key):
                session.add(
                    Setting(section=section, key=key, value=new, updated_at=now, updated_by=actor)
                )
    if changed:
        audit.record(
            session,
            at=now,
            actor=actor,
            action="settings.change",
            entity_type="settings",
            changes=changed,
        )
    return result


class LiveSettings:
    """The configuration in force for a process, re-read from the database at most every
    `REFRESH_SECONDS`; the same object is returned while nothing changed. `sessions` must not
    be a writer factory (see `make_session_factory`): a read must never wait for a write lock."""

    def __init__(
        self,
        base: Config,
        sessions: sessionmaker[Session] | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = base
        self._sessions = sessions
        self._clock = clock
        self._lock = threading.Lock()
        self._overrides: Overrides = {}
        self._config = base
        self._read_at: float | None = None

    @classmethod
    def from_engine(cls, engine: Engine, base: Config) -> LiveSettings:
        """Read in their own short transactions, never a writer's: on SQLite a second BEGIN
        IMMEDIATE inside a request that already writes would wait for itself."""
        return cls(base, make_session_factory(engine))

    def current(self) -> Config:
        if self._sessions is None:
            return self.base
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= REFRESH_SECONDS:
                with self._sessions() as session:
                    overrides = load_overrides(session)
                if overrides != self._overrides or self._read_at is None:
                    self._overrides, self._config = overrides, apply(self.base, overrides)
                self._read_at = now
            return self._config

    def forget(self) -> None:
        """Read again at the next use (this process just saved an edit)."""
        with self._lock:
            self._read_at = None

    def overridden(self) -> Mapping[str, Mapping[str, Any]]:
        self.current()
        return self._overrides
