"""Per-sender spacing of sends, with a hand-moved clock and a sleep that only records."""

from __future__ import annotations

import threading

import pytest

from scheduler.sending.pacing import SenderRateLimit


class FakeTime:
    """A monotonic clock the test moves by hand; `sleep` records the delay and moves the clock."""

    def __init__(self, advance_on_sleep: bool = True) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.advance_on_sleep = advance_on_sleep
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            if self.advance_on_sleep:
                self.now += seconds


def limiter(fake: FakeTime) -> SenderRateLimit:
    return SenderRateLimit(clock=fake.clock, sleep=fake.sleep)


@pytest.mark.parametrize("per_second", [0, -1])
def test_no_limit_never_waits(per_second: float) -> None:
    fake = FakeTime()
    limit = limiter(fake)
    assert [limit.wait("+1555", per_second) for _ in range(5)] == [0.0] * 5
    assert fake.sleeps == []


def test_calls_are_spaced_evenly_from_an_immediate_first() -> None:
    fake = FakeTime(advance_on_sleep=False)  # a burst: all calls at the same instant
    limit = limiter(fake)
    waits = [limit.wait("+1555", 2) for _ in range(3)]
    assert waits == [0.0, 0.5, 1.0]
    assert fake.sleeps == [0.5, 1.0]


def test_a_caller_that_slept_sends_at_its_slot_and_the_next_waits_the_interval() -> None:
    fake = FakeTime()
    limit = limiter(fake)
    assert limit.wait("+1555", 2) == 0.0
    assert limit.wait("+1555", 2) == 0.5  # the clock moved 0.5 while it slept
    assert limit.wait("+1555", 2) == 0.5
    assert fake.sleeps == [0.5, 0.5]


def test_after_a_quiet_spell_the_next_call_does_not_wait() -> None:
    fake = FakeTime()
    limit = limiter(fake)
    limit.wait("+1555", 2)
    fake.now += 0.5
    assert limit.wait("+1555", 2) == 0.0
    fake.now += 10  # an idle sender does not build up credit for a later burst
    assert limit.wait("+1555", 2) == 0.0
    assert limit.wait("+1555", 2) == 0.5


def test_part_of_the_interval_elapsed_leaves_only_the_rest() -> None:
    fake = FakeTime(advance_on_sleep=False)
    limit = limiter(fake)
    limit.wait("+1555", 4)
    fake.now += 0.1
    assert limit.wait("+1555", 4) == pytest.approx(0.15)


def test_separate_senders_do_not_wait_for_each_other() -> None:
    fake = FakeTime(advance_on_sleep=False)
    limit = limiter(fake)
    assert limit.wait("+1555", 1) == 0.0
    assert limit.wait("ventas@tienda.pe", 1) == 0.0
    assert limit.wait("+1666", 1) == 0.0
    assert limit.wait("+1555", 1) == 1.0
    assert limit.wait("ventas@tienda.pe", 1) == 1.0


def test_threads_on_one_sender_reserve_distinct_slots() -> None:
    fake = FakeTime(advance_on_sleep=False)
    limit = limiter(fake)
    start = threading.Barrier(20)
    waits: list[float] = []
    waits_lock = threading.Lock()

    def send() -> None:
        start.wait()
        waited = limit.wait("+1555", 10)
        with waits_lock:
            waits.append(waited)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(waits) == pytest.approx([i / 10 for i in range(20)])
    assert sorted(fake.sleeps) == pytest.approx([i / 10 for i in range(1, 20)])
