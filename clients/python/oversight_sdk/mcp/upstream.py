"""The MCP server behind the proxy: its tool list changes followed, reached again when it
has forgotten the session, and never sent a call again behind the proxy's back.

Whenever the upstream's tools may have changed, `UpstreamSession` calls `tools_changed`
(the proxy then lists them and shows Oversight the definitions before the next call is
decided). It learns of a change the way the protocol the two speak says:

- **2026-07-28**: a `subscriptions/listen` stream asking for tool list changes
  (`follow_changes`), opened when the upstream says it serves them. A stream that is
  lost or refused is asked for again after a pause (doubling from one second up to a
  minute), and the tools count as changed then, since the stream replays nothing.
- **the initialize handshake** (2025-11-25 and before): the upstream's
  `notifications/tools/list_changed` (`on_message`, the client's message handler).

On the initialize handshake over streamable HTTP, a server that restarted (a deploy, a
crash) answers the old session's requests with 404 "Session not found". The protocol
says the client must then start a new session; the `mcp` package's client keeps sending
the old session id, so every call would fail until the proxy restarted. `UpstreamSession`
opens a new session instead:

- the request that met the lost session is not sent again: it raises `SessionLost`
  (the server did not run it; a tool call is answered as not run, and the agent calls
  again, to be decided again);
- the new session is opened by the task that owns the client (`run`), and the tools
  count as changed (`tools_changed`): a server that restarted may define them differently,
  so the next call lists them again and shows Oversight the definitions first.

Over stdio (the session is the server's process), and on protocol 2026-07-28 (no
sessions), a session is never lost this way.

An HTTP upstream that is down (nothing accepts the connection) did not get the call: it
raises `Unreachable` (not run), never "may have run", and the session is dropped and
opened again. While none is open, each call asks for an attempt at once (not after the
pause between attempts) and waits for it: a call finds a restarted upstream as soon as it
listens, and is refused in the time a connection takes to be refused while it does not.

On 2026-07-28 over HTTP, an upstream refuses a call whose `Mcp-Param-*` headers no
longer match the tool's schema (`HEADER_MISMATCH`: the tool was redefined since the proxy
listed it). The `mcp` package's client would then list the tool again and send the call
again by itself, to a definition Oversight has not seen. The client the proxy uses
(`_Client`) refuses to list except when the proxy lists; the call raises
`DefinitionChanged` instead (not run), and the tools count as changed, so the next call
is decided on the new definition.
"""

from __future__ import annotations

import json
import logging
import secrets
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import anyio
import httpx2
import mcp_types as types
from anyio.abc import TaskStatus
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import SubscriptionLost
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

T = TypeVar("T")

logger = logging.getLogger(__name__)

# The codes servers give a request on a session they do not know: this package's
# INVALID_REQUEST (its server, and its client for a bare 404), and -32001 (the TypeScript
# SDK's server).
_SESSION_CODES = frozenset({types.INVALID_REQUEST, -32001})
OPEN_WAIT = 30.0  # seconds a request waits for a new session to open
REOPEN_AFTER = 0.5  # seconds before trying again to open one, doubling up to REOPEN_AT_MOST
REOPEN_AT_MOST = 10.0
WATCH_EVERY = 0.5  # seconds between checks that a stdio upstream's process is still there
RELISTEN_AFTER = 1.0  # seconds before a lost subscription to the upstream is asked again
RELISTEN_AT_MOST = 60.0  # the pause doubles after each failure, up to this
# The `mcp` package's own time-outs for its HTTP transport: 30 s, and 300 s to read (a
# server may hold a response stream open).
HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
# The JSON-RPC error code (in the implementation-defined range) and the marker in its data
# the proxy's HTTP transport answers a request with when it could not be sent; the
# marker's value is this process's own, so no upstream can answer "not sent" for a call
# it ran.
NOT_SENT_CODE = -32050
NOT_SENT_MARK = "oversight.dev/not_sent"
_NOT_SENT_NONCE = secrets.token_hex(16)


_PROXY_LISTING: ContextVar[bool] = ContextVar("oversight_mcp_proxy_listing", default=False)


class NotRun(RuntimeError):
    """The upstream did not run the request; it may be made again."""


class SessionLost(NotRun):
    """The upstream no longer knew the session."""

    def __init__(self, cause: MCPError) -> None:
        super().__init__(
            "the upstream server had lost this session (it may have restarted), so the call "
            f"did not run; a new session is being opened: call again ({cause.error.message})"
        )


class DefinitionChanged(NotRun):
    """The upstream refused a call made for a definition it has since changed."""

    def __init__(self) -> None:
        super().__init__(
            "the upstream server has changed this tool's definition since the proxy listed "
            "it, so the call did not run; call again to have it decided on the new one"
        )


class Unreachable(NotRun):
    """The upstream server could not be reached: the request was not sent."""


class UpstreamError(RuntimeError):
    """The upstream server could not be reached at the start, or its process ended: the
    proxy stops, and says so in one line (cli.py)."""


class _Client(Client):
    """The package's client, listing tools only when the proxy does (never to send a
    refused call again by itself)."""

    async def list_tools(self, *args: Any, **kwargs: Any) -> types.ListToolsResult:
        if not _PROXY_LISTING.get():
            raise DefinitionChanged()
        return await super().list_tools(*args, **kwargs)


class UpstreamSession:
    """An `mcp.Client` to `target`, opened (and opened again) by `run`, a task of its own;
    `client_options` go to the client."""

    def __init__(self, target: Any, **client_options: Any) -> None:
        self.target = target
        self.client_options = {**client_options, "message_handler": self.on_message}
        # Called when the upstream's tools may have changed (it said so, a new session, a
        # refused call); set by the proxy (a change before it exists needs no telling).
        self.tools_changed: Callable[[], None] = lambda: None
        self._client: Client | None = None
        self._output: Any = None  # a stdio server's output stream, once open
        self._open = anyio.Event()  # set while a session is open
        self._lost = anyio.Event()  # set when the open one turned out lost
        # While none is open: the attempt to open one under way (or the next), set when
        # it ends; why the last one failed; set to make the next one at once.
        self._attempt = anyio.Event()
        self._unreachable = ""
        self._wake = anyio.Event()

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("the upstream session is not open")
        return self._client

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Keep a session open to the upstream; started once the first one is. Only a
        streamable-HTTP upstream is reached again: over stdio the session is the server's
        process, and whatever ends it ends the proxy."""
        reopens = isinstance(self.target, str)
        first, pause = True, REOPEN_AFTER
        while True:
            opened = False
            try:
                async with _Client(self._transport(), **self.client_options) as client:
                    opened = True
                    self._client, self._unreachable = client, ""
                    self._open.set()
                    self._attempt.set()
                    if first:
                        task_status.started()
                        first = False
                    else:
                        logger.warning("opened a new session with the upstream server")
                        self.tools_changed()
                    pause = REOPEN_AFTER
                    await self._lost.wait()
            except Exception as exc:
                if first:
                    raise UpstreamError(
                        f"could not open a session with the upstream server "
                        f"({self._described()}): {_cause(exc)}"
                    ) from exc
                if not reopens:
                    raise self._ended() from exc
                if not opened:
                    logger.warning(
                        "could not open a new session with the upstream: %s", _cause(exc)
                    )
                    self._unreachable = _cause(exc)
                    failed, self._attempt = self._attempt, anyio.Event()
                    self._wake = anyio.Event()
                    failed.set()  # the calls waiting for it are refused (`_current`)
                    with anyio.move_on_after(pause):  # or until a call asks for one
                        await self._wake.wait()
                    pause = min(pause * 2, REOPEN_AT_MOST)
                    continue
                logger.debug("the lost session ended with: %s", exc)  # closing it, mostly
            if not reopens:  # its process ended (`_stdio_watched`)
                raise self._ended()
            self._forget()

    def _transport(self) -> Any:
        """What the client connects through: over HTTP, the package's transport with a
        request that could not be sent answered as such (`_NotSentAnswered`)."""
        if isinstance(self.target, StdioServerParameters):
            return _stdio_watched(self.target, self._watch_output)
        if isinstance(self.target, str):
            return _http_transport(self.target)
        return self.target

    def _ended(self) -> UpstreamError:
        return UpstreamError(
            f"the upstream server's process ended ({self._described()}); the proxy stops with it"
        )

    def _described(self) -> str:
        if isinstance(self.target, str):
            return self.target
        return shlex.join([self.target.command, *self.target.args])

    async def on_message(self, message: Any) -> None:
        """The client's message handler: a handshake-era tool list change. (On 2026-07-28
        the client hands it the listen stream's notifications too: `follow_changes` counts
        those.)"""
        if not isinstance(message, types.ToolListChangedNotification):
            return
        if self._client is None or self._client.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            self.tools_changed()

    async def follow_changes(self) -> None:
        """On 2026-07-28, call `tools_changed` for each tool list change the upstream
        announces, for as long as the proxy runs, through each session `run` opens.
        Returns at once on the handshake (`on_message` does it there) or when the upstream
        announces no such changes."""
        client = self.client
        pause = RELISTEN_AFTER
        while _announces_changes(client):
            try:
                async with client.listen(tools_list_changed=True) as subscription:
                    pause = RELISTEN_AFTER  # acknowledged
                    async for _ in subscription:
                        self.tools_changed()
                if not isinstance(self.target, str):
                    return  # a stdio server closed the stream: it is going away
                self._drop(client)  # an HTTP one may be restarting: a new session is asked
            except RuntimeError:  # the client's own tasks have ended: its session is gone
                self._drop(client)
            except (SubscriptionLost, MCPError, OSError, anyio.BrokenResourceError) as exc:
                if self._output_closed():  # a stdio server's process ended: `run` stops
                    self._drop(client)
                    return
                log = logger.warning if pause == RELISTEN_AFTER else logger.debug
                log("lost the upstream's tool list changes, asking again in %.0f s: %s", pause, exc)
                await anyio.sleep(pause)
                pause = min(pause * 2, RELISTEN_AT_MOST)
            if self._client is not client:  # a new session, or one being opened: follow it
                await self._open.wait()
                client, pause = self.client, RELISTEN_AFTER
            self.tools_changed()  # whatever changed meanwhile was not replayed

    def _forget(self) -> None:
        """The open session is lost: requests from now on wait for the next one."""
        if self._client is not None:
            self._client = None
            self._open = anyio.Event()
            self._attempt = anyio.Event()
        self._lost = anyio.Event()

    async def list_tools(
        self, *, cursor: str | None = None, cache_mode: Any = "use"
    ) -> types.ListToolsResult:
        listing = _PROXY_LISTING.set(True)
        try:
            return await self.forward(
                lambda client: client.list_tools(cursor=cursor, cache_mode=cache_mode)
            )
        finally:
            _PROXY_LISTING.reset(listing)

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        try:
            return await self.forward(lambda client: client.call_tool(name, arguments))
        except DefinitionChanged:
            self.tools_changed()
            raise

    async def forward(self, request: Callable[[Client], Awaitable[T]]) -> T:
        """`request` made on the open session (NotRun if none opens in time; SessionLost,
        a new session asked for, if the upstream no longer knows this one)."""
        client = await self._current()
        try:
            return await request(client)
        except MCPError as exc:
            if _not_sent(exc):
                self._drop(client)  # a new session once the upstream is back
                raise self._unreachable_now(exc.error.message) from exc
            if self._lost_with(client, exc):
                raise SessionLost(exc) from exc
            raise

    async def _current(self) -> Client:
        """The open client; while none is, once the attempt to open one (made at once)
        has (`Unreachable`, the call not sent, if it fails; NotRun if none opens within
        OPEN_WAIT seconds)."""
        if self._client is None:  # only then: a cancel scope on every call costs time
            attempt = self._attempt
            self._wake.set()
            with anyio.move_on_after(OPEN_WAIT):
                await attempt.wait()
            if self._client is None and attempt.is_set():
                raise self._unreachable_now(self._unreachable)
            if self._client is None:
                raise NotRun(
                    f"the upstream server could not be reached for {OPEN_WAIT:.0f} s "
                    f"({self._described()}); the call was not sent to it"
                )
        return self.client

    def _unreachable_now(self, why: str) -> Unreachable:
        return Unreachable(
            f"the upstream server could not be reached ({self._described()}: {why}), so "
            "the call was not sent to it; call again once it is back"
        )

    def _lost_with(self, client: Client, exc: MCPError) -> bool:
        """Whether `exc` says the upstream no longer knows `client`'s session; if so, a
        new session is asked for (once, by the first to find out)."""
        if not isinstance(self.target, str) or not _session_gone(client, exc):
            return False  # over stdio, or in the same process: the session is the connection
        self._drop(client)
        return True

    async def _watch_output(self, read: Any) -> None:
        """While a stdio session is open: once the server's output has closed (its
        process ended), the session is dropped, found within WATCH_EVERY seconds."""
        self._output = read
        while not self._output_closed():
            await anyio.sleep(WATCH_EVERY)
        self._drop(self._client)

    def _output_closed(self) -> bool:
        """Whether a stdio server's output has closed. The stream's statistics say it, so
        the messages themselves take no extra hop to be watched."""
        return self._output is not None and not self._output.statistics().open_send_streams

    def _drop(self, client: Client | None) -> None:
        """`client`'s session is gone: `run` closes it and opens another (over stdio, it
        stops the proxy). Only the first to find out does it."""
        if client is not None and self._client is client:
            lost = self._lost
            self._forget()
            lost.set()


def _announces_changes(client: Client) -> bool:
    """Whether `client`'s session hears of tool list changes through `listen` (2026-07-28,
    and the upstream says it announces them)."""
    if client.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    tools = client.server_capabilities.tools
    return tools is not None and bool(tools.list_changed)


def _cause(exc: BaseException) -> str:
    """The innermost failure's words, out of the task groups it may be wrapped in."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return str(exc) or type(exc).__name__


@asynccontextmanager
async def _stdio_watched(
    server: StdioServerParameters, watch: Callable[[Any], Awaitable[None]]
) -> AsyncIterator[Any]:
    """The package's stdio transport to `server`, its read stream watched by `watch` for
    as long as it is open. (The package's client, once the server's process has ended,
    only fails each request.)"""
    async with stdio_client(server) as (read, write), anyio.create_task_group() as tasks:
        tasks.start_soon(watch, read)
        yield read, write
        tasks.cancel_scope.cancel()


@asynccontextmanager
async def _http_transport(url: str) -> AsyncIterator[Any]:
    """The package's streamable-HTTP transport to `url`, through `_NotSentAnswered`."""
    transport = _NotSentAnswered(httpx2.AsyncHTTPTransport())
    http = httpx2.AsyncClient(timeout=HTTP_TIMEOUT, transport=transport)
    async with http, streamable_http_client(url, http_client=http) as streams:
        yield streams


class _NotSentAnswered(httpx2.AsyncBaseTransport):
    """HTTP to the upstream, where a JSON-RPC request that could not be sent (no
    connection: refused, unreachable, timed out connecting) is answered with an error
    saying so (NOT_SENT_CODE). The package's transport would fail with the connection
    error, closing the session, and its caller could not tell a request never sent from
    one sent and not answered."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return await self.inner.handle_async_request(request)
        except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
            ident = _request_id(request)
            if ident is None:
                raise
            data = {NOT_SENT_MARK: _NOT_SENT_NONCE}
            error = {"code": NOT_SENT_CODE, "message": _cause(exc), "data": data}
            body = {"jsonrpc": "2.0", "id": ident, "error": error}
            return httpx2.Response(503, json=body, request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _request_id(request: httpx2.Request) -> str | int | None:
    """The id of the JSON-RPC request `request` POSTs, if it is one (not a notification,
    a response or a stream)."""
    if request.method != "POST":
        return None
    try:
        message = json.loads(request.content)
    except (ValueError, httpx2.RequestNotRead):
        return None
    if not isinstance(message, dict) or "method" not in message:
        return None
    ident = message.get("id")
    return ident if isinstance(ident, (str, int)) and not isinstance(ident, bool) else None


def _not_sent(exc: MCPError) -> bool:
    """Whether `exc` is `_NotSentAnswered`'s answer (not one the upstream made)."""
    data = exc.error.data
    if exc.error.code != NOT_SENT_CODE or not isinstance(data, dict):
        return False
    return data.get(NOT_SENT_MARK) == _NOT_SENT_NONCE


def _session_gone(client: Client, exc: MCPError) -> bool:
    if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return False  # no sessions
    error = exc.error
    return error.code in _SESSION_CODES and "session" in error.message.lower()
