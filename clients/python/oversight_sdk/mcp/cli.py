"""`oversight-mcp`: put Oversight in front of an MCP server.

    oversight-mcp [options] -- COMMAND ARGS...             wrap a stdio server
    oversight-mcp [options] --upstream URL --listen HOST:PORT
                                                            front a streamable-HTTP server

The proxy speaks to its own client the way the upstream is reached: over stdio when it
wraps a command, over streamable HTTP (at /mcp) when it fronts a URL. See docs/integrations/mcp.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.client.stdio import StdioServerParameters
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.shared.exceptions import MCPError

from ..aio import AsyncOversight
from ..errors import NotFound, OversightError
from . import calls, passthrough
from .changes import Announcer
from .link import approval_link
from .passthrough import Handler
from .pipes import native_stdio
from .proxy import Proxy, Settings
from .stopping import stopped_by_signal
from .upstream import NotRun, UpstreamError, UpstreamSession

logger = logging.getLogger("oversight_sdk.mcp")

DEFAULT_HOLD_WAIT = 50.0  # below the common MCP clients' 60 s request time-out
DEFAULT_MAX_REPORTS = Settings.max_reports


def _default_loop() -> str:
    """uvloop where it is installed (the `mcp` extra installs it outside Windows): a call
    takes many turns of the proxy's event loop (the MCP server's and client's tasks and
    streams, the request to Oversight), and uvloop's are cheaper (docs/performance.md,
    2026-12-04: about 0.5 ms less of what the proxy adds to a call)."""
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


@dataclass(frozen=True)
class Options:
    command: list[str]
    upstream: str | None
    listen: tuple[str, int] | None
    server_name: str | None
    action_template: str
    resources: dict[str, str]
    hold_wait: float
    oversight_url: str | None
    oversight_token: str | None
    max_reports: int = DEFAULT_MAX_REPORTS
    loop: str = field(default_factory=_default_loop)  # "uvloop" or "asyncio"
    upstream_protocol: str = "auto"  # "auto" or "legacy" (the initialize handshake)
    passes: frozenset[str] = frozenset()  # of passthrough.PASSABLE: handed to the upstream
    session_id: str = ""  # a stdio proxy's session, as its host names it (else its own)


def parse(argv: Sequence[str]) -> Options:
    argv = list(argv)
    command: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        prog="oversight-mcp",
        description="Ask Oversight before every MCP tool call.",
        usage="%(prog)s [options] -- COMMAND ARGS...  |  %(prog)s [options] --upstream URL "
        "--listen HOST:PORT",
    )
    parser.add_argument("--upstream", help="the streamable-HTTP MCP server to front (URL)")
    parser.add_argument("--listen", help="HOST:PORT to serve streamable HTTP on (with --upstream)")
    parser.add_argument(
        "--server-name",
        help="the server's name in action names (default: the name the upstream gives itself)",
    )
    parser.add_argument(
        "--action",
        default=calls.DEFAULT_ACTION_TEMPLATE,
        help="action template over {server} and {tool} (default: %(default)s)",
    )
    parser.add_argument(
        "--resource",
        action="append",
        default=[],
        metavar="TOOL=TEMPLATE",
        help="a tool's resource, a template over its arguments: refund=stripe:charge/{charge} "
        "(repeatable; default mcp:<server>/<tool>)",
    )
    parser.add_argument(
        "--hold-wait",
        type=float,
        default=DEFAULT_HOLD_WAIT,
        help="seconds a held call waits for a decision before answering that it awaits "
        "approval (default: %(default)s)",
    )
    parser.add_argument(
        "--max-reports",
        type=int,
        default=DEFAULT_MAX_REPORTS,
        help="outcome reports under way at once; past that a call waits for one to end "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default=_default_loop(),
        help="the event loop (default here: %(default)s; uvloop where it is installed, "
        "else asyncio)",
    )
    parser.add_argument(
        "--upstream-protocol",
        choices=("auto", "legacy"),
        default="auto",
        help="how to reach the upstream: auto (the newest protocol both speak) or legacy "
        "(the initialize handshake, for a server that mishandles the newer one's probe) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--pass",
        dest="passes",
        action="append",
        choices=passthrough.PASSABLE,
        default=[],
        help="also offer the upstream's resources or prompts, handed to it as they are: "
        "reads, not decided nor recorded (repeatable; default: tools only)",
    )
    parser.add_argument(
        "--session-id",
        default=os.environ.get("OVERSIGHT_SESSION_ID", ""),
        help="with a stdio server: the agent's session its calls belong to, as the host that "
        "starts the proxy names it (default: $OVERSIGHT_SESSION_ID, else one of its own)",
    )
    parser.add_argument("--oversight-url", help="default: $OVERSIGHT_URL")
    parser.add_argument("--oversight-token", help="default: $OVERSIGHT_TOKEN")
    args = parser.parse_args(argv)
    if bool(command) == bool(args.upstream):
        parser.error("give either -- COMMAND ARGS (a stdio server) or --upstream URL")
    if args.upstream and not args.listen:
        parser.error("--upstream needs --listen HOST:PORT")
    if args.listen and not args.upstream:
        parser.error("--listen goes with --upstream")
    if args.hold_wait < 0:
        parser.error("--hold-wait must not be negative")
    if args.max_reports < 1:
        parser.error("--max-reports must be at least 1")
    if args.session_id and args.listen:
        parser.error(
            "--session-id goes with a stdio server: over HTTP each client's session is its own"
        )
    if len(args.session_id) > 100 or "\x00" in args.session_id:
        parser.error("--session-id: at most 100 characters, and no NUL")
    if args.loop == "uvloop" and not importlib.util.find_spec("uvloop"):
        parser.error("--loop uvloop: uvloop is not installed")
    resources: dict[str, str] = {}
    for item in args.resource:
        tool, sep, template = item.partition("=")
        if not sep or not tool or not template:
            parser.error(f"--resource {item!r}: expected TOOL=TEMPLATE")
        try:
            calls.check_template(template)
        except ValueError as exc:
            parser.error(f"--resource {item!r}: {exc}")
        resources[tool] = template
    try:
        calls.check_resource_tools(resources)
    except ValueError as exc:
        parser.error(f"--resource: {exc}")
    listen = None
    if args.listen:
        host, sep, port = args.listen.rpartition(":")
        if not sep or not host or not port.isdigit():
            parser.error(f"--listen {args.listen!r}: expected HOST:PORT")
        listen = (host.strip("[]"), int(port))
    return Options(
        command=command,
        upstream=args.upstream,
        listen=listen,
        server_name=args.server_name,
        action_template=args.action,
        resources=resources,
        hold_wait=args.hold_wait,
        oversight_url=args.oversight_url or os.environ.get("OVERSIGHT_URL"),
        oversight_token=args.oversight_token or os.environ.get("OVERSIGHT_TOKEN"),
        max_reports=args.max_reports,
        loop=args.loop,
        upstream_protocol=args.upstream_protocol,
        passes=frozenset(args.passes),
        session_id=args.session_id,
    )


class _ProxyServer(Server[Any]):
    """The proxy's MCP server: it says, on the initialize handshake too, that its tool list
    may change (the upstream's may: changes.py)."""

    def create_initialization_options(
        self, notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        notices = notification_options or NotificationOptions(tools_changed=True)
        return super().create_initialization_options(notices, *args, **kwargs)

    def get_capabilities(self, *args: Any, **kwargs: Any) -> types.ServerCapabilities:
        """As the package derives them, but only tool list changes are announced: on
        2026-07-28 it would say every kind is, since `subscriptions/listen` is served; the
        resources and prompts handed through (passthrough.py) are not."""
        found = super().get_capabilities(*args, **kwargs)
        if found.resources is not None:
            found.resources = types.ResourcesCapability(subscribe=False, list_changed=False)
        if found.prompts is not None:
            found.prompts = types.PromptsCapability(list_changed=False)
        return found


def proxy_server(
    proxy: Proxy,
    name: str,
    announcer: Announcer,
    passed: Mapping[str, Handler] | None = None,
    own_session: str = "",
) -> Server[Any]:
    """The MCP server the agent talks to: tools, each answered by the proxy, and changes
    of the tool list announced (`announcer`); and the handlers of what it hands to the
    upstream as it is (`passed`: its resources, its prompts; passthrough.py). A stdio
    proxy's one client is the session `own_session` (`call_session`)."""

    async def on_list_tools(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        announcer.listed(ctx.session)
        try:
            tools = await proxy.list_tools()
        except OversightError as exc:  # no list rather than a guess, and why
            message = f"Oversight could not be asked which tools this agent may use: {exc}"
            raise MCPError(types.INTERNAL_ERROR, message) from None
        except NotRun as exc:  # the upstream's listing could not be had
            raise MCPError(types.INTERNAL_ERROR, f"The tools could not be listed: {exc}") from None
        return types.ListToolsResult(tools=tools)

    async def on_call_tool(
        ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        link = approval_link(ctx, params)
        session_id = call_session(ctx, own_session)
        return await proxy.call_tool(params.name, dict(params.arguments or {}), link, session_id)

    return _ProxyServer(
        f"oversight-{name}",
        version="1",
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        on_subscriptions_listen=announcer.listen_handler,
        get_tool_input_schema=proxy.input_schema,
        **(passed or {}),
    )


def call_session(ctx: Any, own: str) -> str:
    """The session Oversight records a tools/call in (a canary's sticky share, an undo of
    the session's actions): the MCP client's. A stdio proxy serves one client for its
    whole run (`own`); over streamable HTTP, the `Mcp-Session-Id` of a client on the
    initialize handshake; a 2026-07-28 client over HTTP has none (each of its calls
    stands alone), so each call is a session of its own, as any ask without one is."""
    request = ctx.request
    if request is None:  # stdio
        return own
    found = request.headers.get("mcp-session-id", "")
    return f"mcp-{found}"[:100] if found else ""


@asynccontextmanager
async def connected(
    options: Options,
) -> AsyncIterator[tuple[Proxy, str, Announcer, dict[str, Handler]]]:
    """The upstream session (its tool changes followed, opened again if the upstream
    loses it: upstream.py), the Oversight client and the proxy over them, and the handlers
    of what `options.passes` hands to the upstream."""
    if options.command:
        target: Any = StdioServerParameters(
            command=options.command[0], args=options.command[1:], env=upstream_environment()
        )
    else:
        target = options.upstream
    upstream = UpstreamSession(target, mode=options.upstream_protocol)
    proxy: Proxy | None = None
    async with AsyncOversight(options.oversight_url, options.oversight_token) as oversight:
        try:
            async with anyio.create_task_group() as tasks:
                await tasks.start(upstream.run)
                info = upstream.client.server_info
                name = options.server_name or (info.name if info else "") or _command_name(options)
                settings = Settings(
                    naming=calls.Naming(
                        server=name,
                        action_template=options.action_template,
                        resources=options.resources,
                    ),
                    hold_wait=options.hold_wait,
                    oversight_url=options.oversight_url or "",
                    max_reports=options.max_reports,
                )
                proxy = Proxy(upstream, oversight, settings)
                announcer = Announcer()
                upstream.tools_changed = proxy.tools_changed
                tasks.start_soon(upstream.follow_changes)
                if options.session_id:  # off the start's path: Oversight may be slow to answer
                    tasks.start_soon(_load_release, oversight, options.session_id)
                tasks.start_soon(proxy.follow_changes, announcer)
                yield proxy, name, announcer, passthrough.handlers(upstream, options.passes)
                tasks.cancel_scope.cancel()
        finally:
            if proxy is not None:  # the reports go to Oversight, still open here
                await proxy.drain()


async def _load_release(oversight: AsyncOversight, session_id: str) -> None:
    """Load the release of the host's session, as the host did when the session began: the
    client then says it with each ask, so that in a canary the session's calls through the
    proxy are decided under the release the session runs (docs/releases.md). Until it is
    loaded, or if it cannot be (Oversight unreachable, say), the calls are assigned by the
    session's bucket, which is where the release was loaded from anyway."""
    try:
        await oversight.release(session_id)
    except NotFound:
        pass  # the agent has no release yet
    except OversightError as exc:
        logger.warning("could not load the release of session %s: %s", session_id, exc)


# The agent's credential for Oversight: the server behind the proxy never needs it.
_KEPT_FROM_UPSTREAM = frozenset({"OVERSIGHT_TOKEN"})


def upstream_environment() -> dict[str, str]:
    """The environment a stdio upstream starts with: the proxy's own (so an MCP client's
    `env` for the server, its API keys, reaches it), without the agent's Oversight token."""
    return {k: v for k, v in os.environ.items() if k not in _KEPT_FROM_UPSTREAM}


def _command_name(options: Options) -> str:
    if options.command:
        return os.path.basename(options.command[0])
    return "upstream"


class ListenError(Exception):
    """The proxy cannot listen where `--listen` says."""


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket `--listen` names, bound before anything else starts (so a port in use
    is said in one line, with no upstream started for nothing)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


async def serve(options: Options) -> None:
    listening = listening_socket(*options.listen) if options.listen else None
    try:
        await _serve(options, listening)
    finally:
        if listening is not None:
            listening.close()


async def _serve(options: Options, listening: socket.socket | None) -> None:
    async with connected(options) as (proxy, name, announcer, passed):
        if options.listen is None:
            session = options.session_id or f"mcp-{uuid.uuid4().hex}"
            server = proxy_server(proxy, name, announcer, passed, session)
            from mcp.server.stdio import stdio_server

            async with native_stdio() as own, stdio_server(*(own or ())) as (read, write):
                serving = server.run(read, write, server.create_initialization_options())
                if own is None:  # a terminal, a file: a signal ends the proxy at once
                    await serving
                    return
                async with stopped_by_signal(lambda: proxy.calls_under_way, own[0]):
                    await serving
            return
        import uvicorn

        from .http_server import STOP_WAIT, StoppingServer

        server = proxy_server(proxy, name, announcer, passed)
        host, port = options.listen
        app = server.streamable_http_app(host=host)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=STOP_WAIT,
        )
        http = StoppingServer(config, before_stop=announcer.listen_handler.close)
        await http.serve(sockets=[listening] if listening else None)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="oversight-mcp: %(message)s"
    )
    for missing, how in (
        (
            not options.oversight_url,
            "no Oversight server: pass --oversight-url or set OVERSIGHT_URL",
        ),
        (
            not options.oversight_token,
            "no agent token: pass --oversight-token or set OVERSIGHT_TOKEN",
        ),
    ):
        if missing:  # said in the proxy's own words, not the SDK's (url=, token=)
            print(f"oversight-mcp: {how}", file=sys.stderr)
            return 2
    try:
        anyio.run(serve, options, backend_options={"use_uvloop": options.loop == "uvloop"})
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        told = _told(exc)
        if told is None:
            raise
        print(f"oversight-mcp: {told}", file=sys.stderr)
        return 1 if isinstance(told, UpstreamError | ListenError) else 2
    return 0


def _told(exc: BaseException) -> BaseException | None:
    """A failure said in one line, not a traceback, found in the task groups it may be
    wrapped in: no Oversight server or token (ValueError, OversightError), or no upstream
    (UpstreamError)."""
    if isinstance(exc, BaseExceptionGroup):
        return next(filter(None, map(_told, exc.exceptions)), None)
    said = ValueError | OversightError | UpstreamError | ListenError
    return exc if isinstance(exc, said) else None


if __name__ == "__main__":
    sys.exit(main())
