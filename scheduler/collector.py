"""The garbage collector held off while a batch is written or prepared for sending, or a page
of figures is read: their many short-lived rows and values set off young collections, and,
promoted, full ones that walk every object the process holds (80 ms each in a process of
130 000: a fifth of recording 20 000 sales; the dashboard's quarter at 5 000 000 follow-ups,
half its reading; without `freeze_loaded`, an eighth of a dispatch on PostgreSQL)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

PAUSE_FROM = 100  # rows of a batch from which the collector waits for its end


def freeze_loaded() -> None:
    """What a long-lived process has loaded by now (modules, mappers, settings, the app) stays
    for its life: frozen, the collector's full passes walk only what the process makes next
    (in a worker of 130 000 objects, each walked them all; a tenth of a busy pass)."""
    gc.collect()
    gc.freeze()


class _Pauses:
    """The batches and pages under way that paused the collector, and whether to start it
    again."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.resume = False


_PAUSES = _Pauses()


@contextmanager
def collections_paused(rows: int = PAUSE_FROM) -> Iterator[None]:
    """No garbage collection while a batch of `rows` is written (from PAUSE_FROM rows; a page
    that reads thousands gives none). The collector starts again when the last batch under
    way ends; a process that had stopped it keeps it stopped; small batches change nothing.
    Entered once SQLite's write lock is taken (`store_sales`): no wait for it with the
    collector paused. On PostgreSQL a batch may still wait for rows a parallel request
    holds, as long as that request takes to commit: the process's garbage waits with it."""
    if rows < PAUSE_FROM:
        yield
        return
    with _PAUSES.lock:
        if _PAUSES.count == 0:
            _PAUSES.resume = gc.isenabled()
            gc.disable()
        _PAUSES.count += 1
    try:
        yield
    finally:
        with _PAUSES.lock:
            _PAUSES.count -= 1
            if _PAUSES.count == 0 and _PAUSES.resume:
                gc.enable()
