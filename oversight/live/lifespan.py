"""The ASGI lifespan of a web process, for its live fragments.

Startup binds the server's event loop, so that fragments are coalesced on it from the
first one. Shutdown sends what the current window still holds: uvicorn stops the process
with the signal it caught once the server has shut down, so a window left to end on its
own would be lost with the process. Shutdown comes after the last requests have been
answered, so their fragments are in it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from oversight.live import publish

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def lifespan(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            publish.bind_event_loop()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await publish.flush()
            await send({"type": "lifespan.shutdown.complete"})
            return
