"""Two PostgreSQL transactions at once: the second started in a thread and seen waiting for a
lock the first holds, before the first goes on."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

WAITING = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
)


@contextmanager
def waiting_for_a_lock(engine: Engine, second: Callable[[], None], what: str) -> Iterator[None]:
    """`second` runs in a thread until it waits for a lock; then the body runs (the first
    commits, say), and on leaving, `second` is waited for: what it raised is raised, then
    whether it ever waited is checked (the body runs either way: it releases the lock)."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            second()
        except BaseException as error:  # noqa: BLE001 - raised below
            failures.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    with engine.connect() as watcher:
        for _ in range(3_000):  # up to 30 s on a busy machine
            blocked = watcher.scalar(WAITING)
            if blocked or not thread.is_alive():
                break
            watcher.rollback()
            threading.Event().wait(0.01)
    try:
        yield
    finally:
        thread.join(timeout=60)
    if failures:
        raise failures[0]
    assert not thread.is_alive(), f"{what} never ended"
    assert blocked, f"{what} never waited"
