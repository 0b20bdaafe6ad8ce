"""One channel-layer channel per process for the live groups: each group message is
received once and handed to this process's sockets in the group directly.

channels gives every consumer a channel of its own: a group message is put on each
socket's queue and deserialized by each socket, and every consumer waits on its browser
and its channel at once (``asyncio.wait`` on two new tasks per message). With 100
sockets that was most of the live path's cost after compression (record 0009). Here the
process's channel joins the groups its sockets are in; a message is deserialized once
and appended to each member's outbox, which the member works through in order on a task
of its own (``LiveConsumer.forward``), checking permissions just before it sends. A
socket that reads slowly holds up only its own outbox.

One ``LocalGroups`` per event loop, as channels-redis keeps one connection per loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Any, Protocol

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


class Member(Protocol):
    def forward(self, message: dict[str, Any]) -> None: ...


class LocalGroups:
    """This loop's sockets by group, and the one channel that joins their groups."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        # Insertion-ordered sets: members of a group hear a message in the order they joined.
        self.members: dict[str, dict[Member, None]] = {}
        self.channel: str | None = None
        self._subscribed: set[str] = set()
        self._reader: asyncio.Task[None] | None = None
        # Joins and leaves of the same group may interleave across sockets; the layer's
        # group_add and group_discard are made one at a time, each for the state then.
        self._lock = asyncio.Lock()

    async def join(self, group: str, member: Member) -> None:
        self.members.setdefault(group, {})[member] = None
        await self._settle(group)

    async def leave(self, group: str, member: Member) -> None:
        members = self.members.get(group, {})
        members.pop(member, None)
        if not members:
            self.members.pop(group, None)
        await self._settle(group)

    async def _settle(self, group: str) -> None:
        async with self._lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
            wanted = group in self.members
            if wanted and group not in self._subscribed:
                await self.layer.group_add(group, self.channel)
                self._subscribed.add(group)
            elif not wanted and group in self._subscribed:
                await self.layer.group_discard(group, self.channel)
                self._subscribed.discard(group)
            if self.members and (self._reader is None or self._reader.done()):
                self._reader = asyncio.get_running_loop().create_task(self._read(self.channel))
            elif not self.members and self._reader is not None:
                # Nobody is left: stop reading (channels-redis then drops the channel's
                # subscription), so that a loop that ends leaves no task behind.
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader
                self._reader, self.channel = None, None

    async def _read(self, channel: str) -> None:
        while True:
            message = await self.layer.receive(channel)
            try:
                self.deliver(message)
            except Exception:  # one bad message must not stop the sockets' updates
                logger.exception("live message could not be delivered")

    def deliver(self, message: dict[str, Any]) -> None:
        """Hand ``message`` to the members of its group, at once and in order. Messages of
        the previous release name no group: every socket gets them and checks them."""
        group = message.get("group")
        if group is None:
            everyone: dict[Member, None] = {}
            for members in self.members.values():
                everyone.update(members)
            targets = list(everyone)
        else:
            targets = list(self.members.get(group, ()))
        for member in targets:
            member.forward(message)


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LocalGroups] = (
    weakref.WeakKeyDictionary()
)


def local_groups() -> LocalGroups:
    """The running loop's."""
    loop = asyncio.get_running_loop()
    found = _by_loop.get(loop)
    if found is None:
        found = _by_loop[loop] = LocalGroups()
    return found
