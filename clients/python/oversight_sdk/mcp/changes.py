"""Telling the proxy's own clients that its tool list changed.

When the upstream's tools change (upstream.py hears of it), the proxy lists them again,
shows Oversight their definitions, and then tells its clients (`Announcer`): on
2026-07-28 with an event on each `subscriptions/listen` stream that asked for it, on the
handshake with `notifications/tools/list_changed` to each client that has listed the
tools. Telling them is a courtesy (they list again); what protects the calls is that
Oversight has seen the new definitions before any of them is decided.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

logger = logging.getLogger(__name__)

_KEPT_SESSIONS = 1024  # handshake clients told of a change: the most recent ones


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
