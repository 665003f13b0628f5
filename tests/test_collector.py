"""The collector waits for a large batch, or a page of figures, to end: the last of those
under way, in any thread; a process that stopped it keeps it stopped."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from scheduler.collector import PAUSE_FROM, collections_paused


@pytest.fixture
def collecting() -> Iterator[None]:
    """The collector on, as a process starts, and on again afterwards whatever a test did."""
    gc.enable()
    yield
    gc.enable()


@pytest.mark.usefixtures("collecting")
def test_a_large_batch_pauses_the_collector_until_the_last_one_ends() -> None:
    with collections_paused(PAUSE_FROM - 1):
        assert gc.isenabled()  # an API's sale or a few: nothing changes
    with pytest.raises(ZeroDivisionError), collections_paused(PAUSE_FROM):
        assert not gc.isenabled()
        with collections_paused(PAUSE_FROM):  # a batch within a batch (a fallback sale by sale)
            assert not gc.isenabled()
        assert not gc.isenabled()
        1 / 0  # noqa: B018 - a batch that fails
    assert gc.isenabled()
    # Two threads' batches at once: the collector waits for the one that ends last.
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def second() -> None:
        first_in.wait()
        with collections_paused(PAUSE_FROM):
            second_in.set()
            first_out.wait()
            seen.append(gc.isenabled())
        seen.append(gc.isenabled())

    thread = threading.Thread(target=second)
    thread.start()
    with collections_paused(PAUSE_FROM):
        first_in.set()
        second_in.wait()
    first_out.set()
    thread.join()
    assert seen == [False, True]


@pytest.mark.usefixtures("collecting")
def test_a_process_that_stopped_the_collector_keeps_it_stopped() -> None:
    gc.disable()
    with collections_paused(PAUSE_FROM):
        assert not gc.isenabled()
    assert not gc.isenabled()
