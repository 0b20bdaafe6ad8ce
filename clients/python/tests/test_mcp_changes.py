"""How the proxy follows an upstream's tool list changes (upstream.py, `UpstreamSession`),
against a real MCP server in the same process: on 2026-07-28 one that serves
`subscriptions/listen`, refusing it at first; on the handshake its notifications."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import sdk_extras

pytest.importorskip("mcp", reason=sdk_extras.reason("mcp"))

import mcp_types as types
from mcp.server.lowlevel.server import Server
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPError

from oversight_sdk.mcp import upstream as upstream_module
from oversight_sdk.mcp.upstream import UpstreamSession


def _upstream(bus: InMemorySubscriptionBus, refusals: int) -> Server[Any]:
    """A server announcing tool list changes on `bus`, refusing the first `refusals`
    subscriptions."""
    listen = ListenHandler(bus)
    left = refusals

    async def on_listen(ctx: Any, params: Any) -> Any:
        nonlocal left
        if left:
            left -= 1
            raise MCPError(code=types.INTERNAL_ERROR, message="not now")
        return await listen(ctx, params)

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[])

    return Server("upstream", on_list_tools=on_list_tools, on_subscriptions_listen=on_listen)


async def _until(condition: Any, timeout: float = 5) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)


def test_each_change_is_heard_and_a_refused_subscription_is_asked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(upstream_module, "RELISTEN_AFTER", 0.05)
    bus = InMemorySubscriptionBus()
    heard: list[float] = []

    async def run() -> None:
        upstream = UpstreamSession(_upstream(bus, refusals=2))
        upstream.tools_changed = lambda: heard.append(1)
        async with anyio.create_task_group() as tasks:
            await tasks.start(upstream.run)
            assert upstream.client.protocol_version == "2026-07-28"
            tasks.start_soon(upstream.follow_changes)
            # Refused twice (0.05 s, then 0.1 s later): each time the tools count as
            # changed, since nothing is replayed once the stream is open.
            await _until(lambda: len(heard) == 2)
            await anyio.sleep(0.3)  # subscribed by now
            assert len(heard) == 2
            await bus.publish(ToolsListChanged())
            await _until(lambda: len(heard) == 3)
            await anyio.sleep(0.2)  # counted once, though the client hands it on twice
            assert len(heard) == 3
            await bus.publish(ToolsListChanged())
            await _until(lambda: len(heard) == 4)
            tasks.cancel_scope.cancel()

    anyio.run(run)


def test_an_upstream_that_announces_no_changes_is_not_asked() -> None:
    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[])

    async def run() -> None:
        upstream = UpstreamSession(Server("quiet", on_list_tools=on_list_tools))
        async with anyio.create_task_group() as tasks:
            await tasks.start(upstream.run)
            assert not upstream.client.server_capabilities.tools.list_changed
            with anyio.fail_after(1):  # returns at once
                await upstream.follow_changes()
            tasks.cancel_scope.cancel()

    anyio.run(run)


def test_on_the_handshake_a_tool_list_notice_is_a_change() -> None:
    upstream = UpstreamSession("http://127.0.0.1:9/mcp")  # never opened here
    heard: list[int] = []

    async def run() -> None:
        await upstream.on_message(types.ToolListChangedNotification())  # no proxy yet
        upstream.tools_changed = lambda: heard.append(1)
        await upstream.on_message(types.ToolListChangedNotification())
        await upstream.on_message(types.PromptListChangedNotification())  # not about tools

    anyio.run(run)
    assert heard == [1]


def test_pass_of_what_the_upstream_does_not_offer_is_said_and_offers_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from oversight_sdk.mcp.passthrough import handlers

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[])

    async def on_list_prompts(ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[])

    async def run() -> dict[str, Any]:
        server = Server("tools", on_list_tools=on_list_tools, on_list_prompts=on_list_prompts)
        upstream = UpstreamSession(server)
        async with anyio.create_task_group() as tasks:
            await tasks.start(upstream.run)
            found = handlers(upstream, frozenset({"resources", "prompts"}))
            tasks.cancel_scope.cancel()
        return found

    with caplog.at_level("WARNING"):
        found = anyio.run(run)
    assert set(found) == {"on_list_prompts", "on_get_prompt"}  # only what it offers
    assert "--pass resources: the upstream server offers no resources" in caplog.text
    assert "prompts" not in caplog.text
