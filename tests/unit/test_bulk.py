"""The prefetching thread: items in order, its errors raised to the consumer, stopped on leaving."""

from __future__ import annotations

import threading

import pytest

from services import bulk


def test_items_come_in_order_made_in_another_thread():
    made_in = []

    def items():
        for i in range(10):
            made_in.append(threading.current_thread().name)
            yield i

    with bulk.Prefetched(items()) as prefetched:
        assert list(prefetched) == list(range(10))
    assert set(made_in) == {"bulk-prefetch"}


def test_an_error_while_making_items_is_raised_to_the_consumer_after_the_items_before_it():
    def items():
        yield 1
        raise ValueError("bad row 2")

    seen = []
    with pytest.raises(ValueError, match="bad row 2"), bulk.Prefetched(items()) as prefetched:
        seen.extend(prefetched)
    assert seen == [1]


def test_leaving_early_stops_the_thread_and_closes_the_items():
    closed = threading.Event()

    def items():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    with bulk.Prefetched(items(), depth=2) as prefetched:
        for item in prefetched:
            if item == 3:
                break
    assert closed.is_set()
    assert "bulk-prefetch" not in {thread.name for thread in threading.enumerate()}


def test_the_thread_starts_making_items_before_the_consumer_asks():
    started = threading.Event()

    def items():
        started.set()
        yield 1

    with bulk.Prefetched(items()) as prefetched:
        assert started.wait(timeout=10)  # the consumer may do other work meanwhile
        assert list(prefetched) == [1]
