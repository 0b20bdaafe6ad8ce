"""A time limit for one piece of database work, kept from outside the thread doing it.

The decision fast lane runs each decision in a thread and answers the agent from the event
loop. When a decision's time is up the loop must answer, and the answer must say what
happened: an error is honest only if nothing was written, and a decision that was written
must be answered as written. So the thread runs each of its statements through
``Deadline.statements()`` (a Django execute wrapper; oversight/lib/prepared.py honours
execute wrappers too):

- a statement that would start after the deadline is refused with ``DeadlineExceeded``,
  a database error, so an open transaction rolls back as for any other;
- ``expire()``, called by whoever waits once the time is up, refuses every later
  statement, cancels the one in flight in the database, and says whether the work has
  touched the database at all. If it has not, it never will, and the caller may answer
  at once. If it has, the caller waits for the thread: its statement has now failed (or
  finished just before the cancel), and the thread's answer is what happened.

The race the lock closes: ``expire()`` cancelling a statement while the thread finishes
it and hands the connection back to the pool, where the cancel would land on another
request's statement. The thread marks the end of each statement under the same lock, and
``expire()`` holds it until the server has taken the cancel request (libpq waits for the
server to close the cancel connection), so a cancel lands only on this work's own
statement, or on a connection still idle in this thread, where PostgreSQL ignores it.
That last case is also a statement marked as running whose query has not yet reached
the server: the cancel is ignored and the query would then wait for its lock unbounded.
So ``expire()`` sends the cancel again until the statement has ended.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import OperationalError, connection

logger = logging.getLogger(__name__)

# How long a cancel request may take to reach the server. It needs a connection of its
# own; a server that cannot take one in this time still ends the statement itself
# (lock_timeout, statement_timeout).
CANCEL_TIMEOUT = 1.0
# How often a cancel is sent again while the statement it was meant for has not ended.
CANCEL_RESEND = 0.05


class DeadlineExceeded(OperationalError):
    """The work's time ran out before this statement could start; it was not run."""


class Deadline:
    """``seconds`` from now, for the work of one thread on its database connection."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._expired = False
        self._touched = False  # a statement was sent
        self._running: Any = None  # the DB-API connection of the statement in flight

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    @contextmanager
    def statements(self) -> Iterator[None]:
        """In the working thread: every statement on its connection keeps to the deadline."""
        with connection.execute_wrapper(self._statement):
            yield

    def _statement(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        with self._lock:
            if self._expired or self.passed():
                self._expired = True
                raise DeadlineExceeded("The time for this work ran out before the statement.")
            self._touched = True
            self._running = context["connection"].connection
        try:
            return execute(sql, params, many, context)
        finally:
            with self._lock:
                self._running = None

    def expire(
        self, *, cancel_timeout: float = CANCEL_TIMEOUT, resend: float = CANCEL_RESEND
    ) -> bool:
        """Once the time is up, from another thread (it blocks until the statement in
        flight has ended, or for ``cancel_timeout``: not on an event loop). Refuse every
        later statement, cancel the one in flight, and return whether the work has
        touched the database.

        A cancel that reaches the server before the statement does finds the connection
        idle and is ignored, and the statement would then wait as long as its lock lets
        it. So the cancel is sent again every ``resend`` seconds until the statement has
        ended; no later one can start, so it is always the same statement."""
        given_up = time.monotonic() + cancel_timeout
        with self._lock:
            self._expired = True
            touched = self._touched
        while True:
            with self._lock:
                running = self._running
                # psycopg's cancel is meant to be called from another thread; SQLite (the
                # development default) has nothing to cancel: its waits have their own
                # limit.
                if running is None or not hasattr(running, "cancel_safe"):
                    return touched
                remaining = given_up - time.monotonic()
                if remaining <= 0:
                    logger.warning("a statement past its deadline outlived its cancels")
                    return touched
                try:
                    running.cancel_safe(timeout=remaining)
                except Exception as exc:  # the statement's own timeouts still end it
                    logger.warning("could not cancel a statement past its deadline: %r", exc)
                    return touched
            time.sleep(resend)
