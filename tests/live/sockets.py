"""The live websocket in-process, as a browser of a given user opens it
(channels.testing's WebsocketCommunicator on the real ASGI application), and what to
read in its messages."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from django.test import Client

from oversight.asgi import application
from oversight.live import publish

ORIGIN = (b"origin", b"http://testserver")  # an allowed host in the test settings
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# The action ids of the new feed rows and new queue items in a message.
NEW_ROW = re.compile(rf'afterbegin:#action-feed[^"]*"><tr id="action-({UUID})"')
NEW_ITEM = re.compile(rf'beforeend:#approval-queue">\s*<article[^>]*id="queue-({UUID})"')


def session_cookie(user: Any) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)
    return (
        b"cookie",
        f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode(),
    )


def live_socket(*headers: tuple[bytes, bytes], path: str = "/ws/live/") -> WebsocketCommunicator:
    """``path``: a page's own, with what it shows (``/ws/live/?show=queue``)."""
    return WebsocketCommunicator(application, path, headers=[(b"host", b"127.0.0.1"), *headers])


async def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run sync ORM code off the event loop, closing that thread's connection after."""

    def call() -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    return await asyncio.to_thread(call)


async def connect(socket: WebsocketCommunicator) -> tuple[bool, Any]:
    """Open the socket as a browser does. What the test set up before, outside a server,
    is sent first (it waits for its window otherwise), as it would have gone by the time
    a browser opened a page. No pause after: the consumer joins its groups before it
    accepts, so whatever is published once the socket is open reaches it."""
    await asyncio.to_thread(publish.flush_outside_server)
    return await socket.connect()
