"""What the proxy hands to the upstream as it is, when asked to (`--pass`): its resources
(list, templates, read) and its prompts (list, get).

The proxy fronts tools only unless told otherwise: a capability nobody named is not
offered (default deny). Reading a resource or getting a prompt changes nothing on the
upstream, so these are not decisions, and Oversight records none of them; what the agent
does with what it read still goes through a tool call, which is decided. They are offered
only if the upstream offers them. Changes to the upstream's resource or prompt lists are
not announced, nor resource subscriptions passed: a client lists them again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.client.client import Client
from mcp.shared.exceptions import MCPError

from .upstream import NotRun, UpstreamSession

logger = logging.getLogger(__name__)

PASSABLE = ("resources", "prompts")

Request = Callable[[Client, Any], Awaitable[Any]]
Handler = Callable[[Any, Any], Awaitable[Any]]

_BY_CAPABILITY: dict[str, dict[str, Request]] = {
    "resources": {
        "on_list_resources": lambda client, params: client.list_resources(cursor=_cursor(params)),
        "on_list_resource_templates": lambda client, params: client.list_resource_templates(
            cursor=_cursor(params)
        ),
        "on_read_resource": lambda client, params: client.read_resource(str(params.uri)),
    },
    "prompts": {
        "on_list_prompts": lambda client, params: client.list_prompts(cursor=_cursor(params)),
        "on_get_prompt": lambda client, params: client.get_prompt(params.name, params.arguments),
    },
}


def handlers(upstream: UpstreamSession, passes: frozenset[str]) -> dict[str, Handler]:
    """The proxy server's handlers for what `passes` names and the upstream offers."""
    offered = upstream.client.server_capabilities
    found: dict[str, Handler] = {}
    for capability in PASSABLE:
        if capability not in passes:
            continue
        if offered is None or not getattr(offered, capability):
            logger.warning("--pass %s: the upstream server offers no %s", capability, capability)
            continue
        for name, request in _BY_CAPABILITY[capability].items():
            found[name] = _forwarded(upstream, request)
    return found


def _forwarded(upstream: UpstreamSession, request: Request) -> Handler:
    async def handler(ctx: Any, params: Any) -> Any:
        try:  # the upstream's own errors (an unknown resource, say) reach the client as they are
            return await upstream.forward(lambda client: request(client, params))
        except NotRun as exc:
            raise MCPError(types.INTERNAL_ERROR, f"Not passed to the upstream: {exc}") from None

    return handler


def _cursor(params: types.PaginatedRequestParams | None) -> str | None:
    return params.cursor if params is not None else None
