"""Long-polling for the agent API: read until the answer is worth giving or time is up,
holding no thread while waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from django.conf import settings

T = TypeVar("T")


async def poll(
    read: Callable[[], Awaitable[T]], ready: Callable[[T], bool], *, wait: float, every: float
) -> T:
    """``read()`` every ``every`` seconds until ``ready`` of it, or ``wait`` seconds (at
    most LONG_POLL_CAP_SECONDS) are up; the last read either way."""
    deadline = time.monotonic() + min(wait, settings.LONG_POLL_CAP_SECONDS)
    while True:
        found = await read()
        remaining = deadline - time.monotonic()
        if ready(found) or remaining <= 0:
            return found
        await asyncio.sleep(min(every, remaining))
