"""The HTTP server of `oversight-mcp --listen`: uvicorn's, stopped so that the proxy
finishes its work.

Stopped (SIGTERM, or Ctrl-C), uvicorn's own server waits for every connection to end,
and a client's `subscriptions/listen` stream (protocol 2026-07-28) never does: the proxy
never stopped. And once stopped, uvicorn raises the signal again, which ended the process
before the proxy had sent the outcome reports still under way (their actions were left
unreported, for their people to settle). `StoppingServer` differs in both:

- its clients' listen streams are ended first, gracefully (each gets its final result and
  may listen again elsewhere), and calls under way get `STOP_WAIT` seconds to finish; a
  held call still waiting for a person is then cut off (its action stays held, and the
  same call again finds it);
- the signal is not raised again: `serve` returns, the proxy sends its reports and
  closes its upstream session, and the process exits with status 0.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from socket import socket

import uvicorn

from .stopping import STOP_WAIT

__all__ = ["STOP_WAIT", "StoppingServer"]


class StoppingServer(uvicorn.Server):
    """uvicorn's server; `before_stop` is called when it starts to stop (in the loop)."""

    def __init__(self, config: uvicorn.Config, *, before_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self.before_stop = before_stop

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM stop the server (a second SIGINT at once); not raised again."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket] | None = None) -> None:
        self.before_stop()
        await super().shutdown(sockets)
