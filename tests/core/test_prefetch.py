"""Work run ahead in threads comes back in order, failures reach the reader, and a reader
that stops early leaves no thread behind (oversight/lib/prefetch.py)."""

from __future__ import annotations

import threading
import time

import pytest

from oversight.lib.prefetch import prefetched


def test_results_come_in_order_whatever_finishes_first() -> None:
    def slow_evens(n: int) -> int:
        time.sleep(0.01 if n % 2 == 0 else 0)
        return n * n

    assert list(prefetched(list(range(20)), slow_evens, workers=3)) == [n * n for n in range(20)]


def test_a_failure_reaches_the_reader_at_its_item() -> None:
    def fetch(n: int) -> int:
        if n == 5:
            raise ValueError("five")
        return n

    seen = []
    with pytest.raises(ValueError, match="five"):
        for n in prefetched(list(range(10)), fetch, workers=2):
            seen.append(n)
    assert seen == [0, 1, 2, 3, 4]


def test_a_reader_that_stops_early_leaves_no_thread() -> None:
    before = threading.active_count()
    results = prefetched(list(range(1000)), lambda n: n, workers=2)
    assert next(results) == 0
    results.close()
    assert threading.active_count() == before
