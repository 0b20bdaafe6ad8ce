"""Send fragments to sockets, after the transaction that caused them has committed.

A broadcast is a side effect: it must never undo or fail the change it reports, so
errors are logged, not raised.

Fragments are coalesced: those published within ``settings.LIVE_BATCH_WINDOW_MS`` leave
as one channel-layer message per group (oversight/live/batches.py). In the ASGI server
from its event loop; in a process without that loop (a Celery worker, a management
command) from one event loop of its own, kept in a thread for the life of the process,
so the channel layer keeps its connection to Redis (a new loop per fragment would open a
new one each time). Such a process sends what is still waiting, and waits for it, at
the end of each Celery task and when it exits (``flush_outside_server``), so nothing is
left behind.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from oversight.live import batches, groups

logger = logging.getLogger(__name__)


# The ASGI server's event loop and its coalescer, once the application has started (its
# lifespan) or seen a request (see bind_event_loop): sync code in its worker threads
# hands fragments to it and returns.
_coalescer: batches.Coalescer | None = None


def _window() -> float:
    return settings.LIVE_BATCH_WINDOW_MS / 1000


def bind_event_loop() -> None:
    """Called by the ASGI application on its event loop."""
    global _coalescer
    loop = asyncio.get_running_loop()
    if _coalescer is None or _coalescer.loop is not loop:
        _coalescer = batches.Coalescer(loop, _window)


async def flush() -> None:
    """On the server's loop: send the fragments that wait for their window now."""
    coalescer = _coalescer
    if coalescer is not None and coalescer.loop is asyncio.get_running_loop():
        await coalescer.flush()


def _log_failure(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("live broadcast failed", exc_info=future.exception())


# Outside the ASGI server: (pid, loop) of the event loop this process sends from, in a
# daemon thread of its own (a forked child, such as a Celery worker process, makes its own).
_sender: tuple[int, asyncio.AbstractEventLoop] | None = None
_sender_lock = threading.Lock()
SEND_TIMEOUT = 10.0  # seconds a send outside the server may take before it is given up


_outside: batches.Coalescer | None = None  # on the sender loop, once something is sent


def _sender_loop() -> asyncio.AbstractEventLoop:
    global _sender
    with _sender_lock:
        if _sender is None or _sender[0] != os.getpid():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="live-send", daemon=True)
            thread.start()
            _sender = (os.getpid(), loop)
        return _sender[1]


def _outside_coalescer() -> batches.Coalescer:
    """This process's coalescer outside the server: on the sender loop (of this process,
    a forked child makes its own)."""
    global _outside
    loop = _sender_loop()
    with _sender_lock:
        if _outside is None or _outside.loop is not loop:
            _outside = batches.Coalescer(loop, _window)
        return _outside


def flush_outside_server() -> None:
    """Outside the server: send the fragments waiting for their window now, and wait for
    them (up to SEND_TIMEOUT). Called at the end of every Celery task and at exit."""
    coalescer = _outside
    if coalescer is None or _sender is None or _sender[0] != os.getpid():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is coalescer.loop or not coalescer.loop.is_running():
        return
    sent = asyncio.run_coroutine_threadsafe(coalescer.flush(), coalescer.loop)
    try:
        sent.result(timeout=SEND_TIMEOUT)
    except Exception:  # a broadcast failure must not fail the task that caused it
        sent.cancel()
        logger.exception("live broadcast at the end of a task failed")


atexit.register(flush_outside_server)


def _run(coroutine_fn: Callable[..., Awaitable[None]], *args: Any) -> None:
    """Run an async channel-layer call from sync code.

    In a worker thread of the ASGI server the call is handed to the server's loop and not
    waited for: the request does not wait on the channel layer (calls are started in the
    order they are made). Elsewhere (Celery, commands, or code on another event loop) it
    runs on this process's sender loop and is waited for, up to SEND_TIMEOUT."""
    loop = _coalescer.loop if _coalescer is not None else None
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if loop is not None and running is None and loop.is_running():
        future = asyncio.run_coroutine_threadsafe(coroutine_fn(*args), loop)
        future.add_done_callback(_log_failure)
        return
    sent = asyncio.run_coroutine_threadsafe(coroutine_fn(*args), _sender_loop())
    try:
        sent.result(timeout=SEND_TIMEOUT)
    except TimeoutError:
        sent.cancel()  # not left running on the sender loop behind the next ones
        raise


def send(group: str, *, html: str, audience: str, agent_ids: list[int] | None = None) -> None:
    """``audience``: which part of a page the fragment is for, "feed", "queue",
    "alerts" or "action" (oversight/live/pages.py), or "agents" (any page); each forwarded only by
    sockets whose person may see one of ``agent_ids`` (approve, for the queue). Or
    "everyone": every socket."""
    layer = get_channel_layer()
    if layer is None:
        return
    fragment = batches.Fragment.of(group, html=html, audience=audience, agent_ids=agent_ids or ())
    coalescer = _coalescer
    if coalescer is None or not coalescer.loop.is_running():
        coalescer = _outside_coalescer()
    left = coalescer.add(fragment)  # what its loop could no longer take: sent here
    if not left:
        return
    for name, message in batches.messages(left):
        try:
            _run(layer.group_send, name, message)
        except Exception:  # a broadcast failure must not fail the request
            logger.exception("live broadcast to %s failed", name)


def resubscribe_everyone() -> None:
    """After a permission change: every socket re-reads what it may see."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        message = {"type": "live.resubscribe", "group": groups.EVERYONE}
        _run(layer.group_send, groups.EVERYONE, message)
    except Exception:
        logger.exception("live resubscribe failed")


# Inside deferred_effects(): what after_commit would run once committed is kept here.
_kept: ContextVar[list[Callable[[], None]] | None] = ContextVar("kept_effects", default=None)


def after_commit(fn: Callable[[], None]) -> None:
    """Run ``fn`` once the current transaction commits (at once without one), and never
    if it rolls back. Inside deferred_effects(), keep it for its caller to run instead."""
    kept = _kept.get()
    if kept is None:
        transaction.on_commit(fn, robust=True)
    else:
        transaction.on_commit(lambda: kept.append(fn), robust=True)


@contextmanager
def deferred_effects() -> Iterator[list[Callable[[], None]]]:
    """What the block's committed work sets off (live rows, telling reviewers), kept to
    be run by run_effects() after the block: the decision fast lane runs them outside its
    deadline, which bounds the decision's statements, not what follows them, and after
    its answer is sent."""
    kept: list[Callable[[], None]] = []
    token = _kept.set(kept)
    try:
        yield kept
    finally:
        _kept.reset(token)


def run_effects(kept: list[Callable[[], None]]) -> None:
    """Run what deferred_effects() kept, in order; a failure is logged, as on_commit's
    robust callbacks are, and the rest still run."""
    for fn in kept:
        try:
            fn()
        except Exception:
            logger.exception("a side effect of a committed change failed")
