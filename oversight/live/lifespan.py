"""The ASGI lifespan of a web process, for its live fragments.

Startup binds the server's event loop, so that fragments are coalesced on it from the
first one. Shutdown sends what the current window still holds: uvicorn stops the process
with the signal it caught once the server has shut down, so a window left to end on its
own would be lost with the process. Shutdown comes after the last requests have been
answered, so their fragments are in it.

Startup also moves what the process has built so far (Django, the URL resolvers, every
module) out of the garbage collector's way: see ``freeze_startup_objects``.

Without a broker the server also runs the periodic jobs (oversight/core/periodic.py):
they start once the loop is bound, so their fragments are coalesced on it, and stop
before the last window is sent, so theirs go with it.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from oversight.core import periodic
from oversight.live import publish

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def freeze_startup_objects() -> None:
    """Collect what start-up left over, then exempt the rest from collection.

    A full collection walks every object the process holds; with Django and this project
    loaded that is over 100,000, and a page that triggered one took 75 to 95 ms longer
    (bench/list_pages.py, docs/performance.md). What exists at start-up lives as long as
    the process, so the collector need not walk it again (``gc.freeze``)."""
    gc.collect()
    gc.freeze()


async def lifespan(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            publish.bind_event_loop()
            freeze_startup_objects()
            if settings.PERIODIC_IN_SERVER:
                periodic.start_in_server()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await asyncio.to_thread(periodic.stop_in_server)
            await publish.flush()
            await send({"type": "lifespan.shutdown.complete"})
            return
