"""Stopping the proxy with a signal (SIGTERM, as a service manager, `docker stop` or an MCP
client that stopped waiting sends it, or Ctrl-C), over stdio; http_server.py does the same
for `--listen`.

The first signal stops the taking of new requests: the calls under way get `STOP_WAIT`
seconds to finish and be answered (a held call still waiting for a person is then cut
off: its action stays held, and the same call again finds it), then the proxy sends the
outcome reports still under way and exits with status 0. A second signal ends it at once.
(A client closing the proxy's input is different: the `mcp` package cuts off the calls
under way then, their callers being gone.)
"""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

import anyio

STOP_WAIT = 10  # seconds the calls under way get to finish once the proxy is stopped
_LOOK_EVERY = 0.05  # seconds between looks at whether they have


class Input(Protocol):
    def hold(self) -> None: ...  # take no new request
    def end(self) -> None: ...  # the input ends


@asynccontextmanager
async def stopped_by_signal(under_way: Callable[[], int], given: Input) -> AsyncIterator[None]:
    """Serve in the body until it ends or a signal stops it: then no new request is taken
    from the input `given`, and the body is cancelled once `under_way()` is 0, or
    `STOP_WAIT` seconds on; then the input ends."""
    with anyio.CancelScope() as serving:
        async with anyio.create_task_group() as watching:
            watching.start_soon(_stop_on_signal, serving, under_way, given)
            yield
            watching.cancel_scope.cancel()


async def _stop_on_signal(
    serving: anyio.CancelScope, under_way: Callable[[], int], given: Input
) -> None:
    if sys.platform == "win32":  # no signal handlers on Windows' event loop
        await anyio.sleep_forever()
    # Leaving the receiver gives the signals their usual meaning again: a second one ends
    # the proxy at once.
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            break
    given.hold()
    with anyio.move_on_after(STOP_WAIT):
        while under_way():
            await anyio.sleep(_LOOK_EVERY)
    serving.cancel()
    given.end()
