"""Two PostgreSQL transactions at once: the second seen waiting for a lock the first holds,
before the first commits."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

WAITING = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
)


def at_once(
    engine: Engine,
    sessions: sessionmaker[Session],
    first: Callable[[Session], object],
    second: Callable[[Session], object],
    what: str,
    *,
    waits: bool = True,
) -> None:
    """`first` writes in one transaction; `second` writes in another, in a thread, until it
    waits for a lock (`what` it waits for, to say so if it never does; with `waits` false,
    it must not: it commits first); then the first commits, and the second. What either
    raised is raised; the first ends either way, releasing what the second waits for."""
    one, other = sessions(), sessions()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            second(other)
            other.commit()
        except BaseException as error:  # noqa: BLE001 - raised below
            failures.append(error)

    thread = threading.Thread(target=run, daemon=True)
    blocked = 0
    try:
        first(one)
        thread.start()
        with engine.connect() as watcher:
            for _ in range(3_000):  # up to 30 s on a busy machine
                blocked = watcher.scalar(WAITING) or 0
                if blocked or not thread.is_alive():
                    break
                watcher.rollback()
                threading.Event().wait(0.01)
        one.commit()
    finally:
        one.close()  # rolled back if it did not commit: the second is released either way
        if thread.ident is not None:
            thread.join(timeout=60)
        other.close()
    if failures:
        raise failures[0]
    assert not thread.is_alive(), f"{what} never ended"
    assert bool(blocked) == waits, f"{what} {'never waited' if waits else 'waited'}"
