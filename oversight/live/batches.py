"""Coalescing: the fragments a web process publishes within a short window go out as one
channel-layer message per group (docs/decisions/0009-live-coalescing.md).

A socket's cost is per message it receives (channels' dispatch, the consumer, the
websocket frame), so one message per group per window makes the fan-out grow with groups
and windows instead of with events times sockets. Fragments are rendered once, by the
caller, before they get here; a batch only concatenates them.

Order: one sender per process sends the windows one after the other, and a window's
fragments keep the order they were published in within each group. Two processes'
messages interleave however Redis receives them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "live.batch"  # handled by LiveConsumer.live_batch

# The HTML parser reads a fragment according to its first tag: after a <tbody> it is in
# table mode, where a bare <tr> gets wrapped in a new <tbody> without hx-swap-oob, and
# after a <div> it drops <tbody> and <tr> tags altogether. htmx parses a websocket
# message as one piece, so only fragments that start alike may share a frame (the
# consumer sends a message's other runs as frames of their own, in order).
_FIRST_TAG = re.compile(r"<([a-zA-Z][^\s/>]*)")
_TABLE_CONTEXTS = {
    "caption": "table",
    "colgroup": "table",
    "tbody": "table",
    "tfoot": "table",
    "thead": "table",
    "tr": "row",
    "td": "cell",
    "th": "cell",
    "col": "columns",
}


def parse_context(html: str) -> str:
    """Which parsing mode the fragment's first tag puts the HTML parser in: "body" for
    ordinary elements, otherwise the table part it belongs in. Assumes each fragment's
    top-level elements are of one kind (a row, a <tbody>, a queue item, banners...)."""
    found = _FIRST_TAG.search(html)
    return _TABLE_CONTEXTS.get(found[1].lower(), "body") if found else "body"


@dataclass(frozen=True, slots=True)
class Fragment:
    """One event's HTML for one group. ``audience``: see publish.send."""

    group: str
    audience: str
    agent_ids: tuple[int, ...]
    html: str
    context: str  # parse_context(html)

    @classmethod
    def of(cls, group: str, *, html: str, audience: str, agent_ids: Iterable[int]) -> Fragment:
        return cls(group, audience, tuple(agent_ids), html, parse_context(html))


def messages(fragments: Iterable[Fragment]) -> list[tuple[str, dict[str, Any]]]:
    """(group, channel-layer message) for each group, in the order the groups first
    appear. A message's ``parts`` are [audience, agent_ids, context, html], in publish
    order; neighbours with the same audience, agent ids and context are joined. It names
    its group: a process receives it once for all its sockets (oversight/live/fanout.py)."""
    by_group: dict[str, list[list[Any]]] = {}
    for f in fragments:
        parts = by_group.setdefault(f.group, [])
        last = parts[-1] if parts else None
        if last and (last[0], last[1], last[2]) == (f.audience, list(f.agent_ids), f.context):
            last[3] += f.html
        else:
            parts.append([f.audience, list(f.agent_ids), f.context, f.html])
    return [
        (group, {"type": MESSAGE_TYPE, "group": group, "parts": parts})
        for group, parts in by_group.items()
    ]


class Coalescer:
    """Collects fragments from any thread; sends each window's on the event loop ``loop``.

    One task per loop does the sending, so windows go out in order and never overlap.
    The window opens with its first fragment: that one waits ``window()`` seconds, the
    later ones less. Waking the loop costs one call per window, not one per fragment.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, window: Callable[[], float]) -> None:
        self.loop = loop
        self.window = window
        self._lock = threading.Lock()  # guards _pending and _opened_at (decision threads)
        self._pending: list[Fragment] = []
        self._opened_at = 0.0
        self._outbox: deque[tuple[str, dict[str, Any]]] = deque()
        self._sending: asyncio.Lock | None = None  # one drainer of the outbox at a time
        self._wake: asyncio.Event | None = None  # made on the loop
        self._task: asyncio.Task[None] | None = None

    def add(self, fragment: Fragment) -> list[Fragment]:
        """Queue ``fragment``. Returns what could not be handed to the loop (it has
        closed: the caller sends those itself), normally nothing."""
        with self._lock:
            self._pending.append(fragment)
            opens = len(self._pending) == 1
            if opens:
                self._opened_at = time.monotonic()
        if not opens:
            return []
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._start()
            return []
        try:
            self.loop.call_soon_threadsafe(self._start)
        except RuntimeError:  # the loop has closed: the server is gone
            return self._take()
        return []

    def _take(self) -> list[Fragment]:
        with self._lock:
            taken, self._pending = self._pending, []
        return taken

    def _start(self) -> None:
        """On the loop: the window has opened."""
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._send_windows(self._wake))
        self._wake.set()

    async def flush(self) -> None:
        """On the loop: send what is waiting now, without waiting for its window to end
        (the server is stopping; see oversight/live/lifespan.py)."""
        self._outbox.extend(messages(self._take()))
        await self._send_outbox()

    async def _send_windows(self, wake: asyncio.Event) -> None:
        try:
            while True:
                await wake.wait()
                wake.clear()
                delay = self._opened_at + self.window() - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self.flush()
        except asyncio.CancelledError:
            # The loop is being shut down with tasks still running (a server without
            # lifespan events, an async_to_sync loop): what waits still goes.
            await self.flush()
            raise

    async def _send_outbox(self) -> None:
        # Messages leave in outbox order, by one drainer at a time: a flush that comes
        # while a window is being sent waits for it, then sends what follows.
        if self._sending is None:
            self._sending = asyncio.Lock()
        layer = get_channel_layer()
        async with self._sending:
            while self._outbox:
                group, message = self._outbox.popleft()
                try:
                    await layer.group_send(group, message)
                except Exception:  # a broadcast failure must not stop the ones after it
                    logger.exception("live broadcast to %s failed", group)
