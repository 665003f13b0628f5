"""Spacing sends per sender, so a burst does not exceed what the provider accepts from it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SenderRateLimit:
    """At most `per_second` units per sender from this process, evenly spaced, thread-safe.

    Per process: several workers share a sender's budget only through the provider's own queue.

    Each caller reserves the next free slot under the lock and sleeps outside it, so threads
    sending through different senders never wait for one another.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free: dict[str, float] = {}

    def wait(self, sender: str, per_second: float, cost: int = 1) -> float:
        """Block until `sender` may send again; returns the seconds waited. `cost` is how many
        units this send uses (an SMS of 3 segments is 3 messages to the carrier)."""
        if per_second <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            slot = max(self._next_free.get(sender, now), now)
            self._next_free[sender] = slot + cost / per_second
        delay = slot - now
        if delay > 0:
            self._sleep(delay)
        return delay
