"""Tool lists that change during a session, on both sides of the proxy.

From the upstream, the proxy learns of a change the way the protocol the two speak says:

- **2026-07-28**: a `subscriptions/listen` stream asking for tool list changes
  (`follow_upstream`), opened when the upstream says it serves them. A stream that is
  lost or refused is asked for again after a pause (doubling from one second up to a
  minute), and the tools count as changed then, since the stream replays nothing.
- **the initialize handshake** (2025-11-25 and before): the upstream's
  `notifications/tools/list_changed` (`UpstreamNotices`, the client's message handler).

Each calls `Proxy.tools_changed`. The proxy lists the tools again, shows Oversight their
definitions, and then tells its own clients (`Announcer`): on 2026-07-28 with an event on
each `subscriptions/listen` stream that asked for it, on the handshake with
`notifications/tools/list_changed` to each client that has listed the tools. Telling them
is a courtesy (they list again); what protects the calls is that Oversight has seen the
new definitions before any of them is decided.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import anyio
import mcp_types as types
from mcp.client.client import Client
from mcp.client.subscriptions import SubscriptionLost
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

logger = logging.getLogger(__name__)

RELISTEN_AFTER = 1.0  # seconds before a lost subscription to the upstream is asked again
RELISTEN_AT_MOST = 60.0  # the pause doubles after each failure, up to this
_KEPT_SESSIONS = 1024  # handshake clients told of a change: the most recent ones


class UpstreamNotices:
    """The upstream client's message handler: a handshake-era tool list change calls
    `changed` (set once the proxy exists; a change before that needs no telling)."""

    def __init__(self) -> None:
        self.changed: Callable[[], None] | None = None

    async def __call__(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification) and self.changed:
            self.changed()


async def follow_upstream(upstream: Client, changed: Callable[[], None]) -> None:
    """On 2026-07-28, call `changed` for each tool list change the upstream announces, for
    as long as the proxy runs. Returns at once on the handshake (`UpstreamNotices` does
    it there) or when the upstream announces no such changes."""
    if upstream.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return
    tools = upstream.server_capabilities.tools
    if tools is None or not tools.list_changed:
        return
    pause = RELISTEN_AFTER
    while True:
        try:
            async with upstream.listen(tools_list_changed=True) as subscription:
                pause = RELISTEN_AFTER  # acknowledged
                async for _ in subscription:
                    changed()
            return  # the upstream closed the stream: it is going away
        except (SubscriptionLost, MCPError, OSError, anyio.BrokenResourceError) as exc:
            log = logger.warning if pause == RELISTEN_AFTER else logger.debug
            log("lost the upstream's tool list changes, asking again in %.0f s: %s", pause, exc)
        await anyio.sleep(pause)
        pause = min(pause * 2, RELISTEN_AT_MOST)
        changed()  # whatever changed meanwhile was not replayed


class Announcer:
    """Tells the proxy's own clients that its tool list changed."""

    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()
        self.listen_handler = ListenHandler(self.bus)  # serves subscriptions/listen
        # Handshake clients that listed the tools, by connection (each request has its own
        # session object; the client's initialize parameters are the connection's own).
        self._sessions: OrderedDict[int, Any] = OrderedDict()

    def listed(self, session: Any) -> None:
        """`session` (a tools/list's) is told of the next changes, on the handshake."""
        if session.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return  # told through its listen stream, if it opened one
        key = id(session.client_params)
        self._sessions[key] = session
        self._sessions.move_to_end(key)
        if len(self._sessions) > _KEPT_SESSIONS:
            self._sessions.popitem(last=False)

    async def __call__(self) -> None:
        await self.bus.publish(ToolsListChanged())
        for session in list(self._sessions.values()):
            try:  # best effort: a client that has gone is not told
                await session.send_tool_list_changed()
            except Exception as exc:
                logger.debug("could not tell a client its tool list changed: %s", exc)
