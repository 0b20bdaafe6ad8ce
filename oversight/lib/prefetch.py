"""Run a function over items ahead of the reader, in threads, each with its own database
connection, and hand the results back in order."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from django.db import connections

T = TypeVar("T")
R = TypeVar("R")

AHEAD = 2  # results each thread may hold ready before the reader takes them


def prefetched(items: Sequence[T], fetch: Callable[[T], R], workers: int) -> Iterator[R]:
    """``fetch(item)`` for every item, in order. Thread k fetches items k, k + workers, ...
    at most ``AHEAD`` results ahead; a failure is raised to the reader at its item. The
    threads close their connections when done, or when the reader stops early."""
    ready: list[queue.Queue[tuple[bool, object]]] = [
        queue.Queue(maxsize=AHEAD) for _ in range(workers)
    ]
    stop = threading.Event()

    def hand_over(k: int, result: tuple[bool, object]) -> None:
        while not stop.is_set():
            try:
                ready[k].put(result, timeout=0.1)
                return
            except queue.Full:
                continue

    def work(k: int) -> None:
        try:
            for item in items[k::workers]:
                if stop.is_set():
                    return
                try:
                    hand_over(k, (True, fetch(item)))
                except Exception as exc:  # handed to the reader, who raises it
                    hand_over(k, (False, exc))
                    return
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for index in range(len(items)):
            ok, result = ready[index % workers].get()
            if not ok:
                raise result  # type: ignore[misc]
            yield result  # type: ignore[misc]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
