"""A payments MCP server for tests: `refund(charge, amount)` and `balance()`, the
resources `payments://balance` and `payments://charges/{charge}`, and the prompt
`refund_request(charge, reason)`.

Each refund that runs appends its arguments, as one JSON line, to the file named by
`--log` (the side effect tests count). `--description` changes the refund tool's
description (a changed definition, for pinning). With `--description-file`, the
description is that file's text, read again whenever the file changes: the tool is then
defined anew and its clients are told the tool list changed (a definition changed in the
middle of a session), on a `subscriptions/listen` stream (2026-07-28) or with
`notifications/tools/list_changed` (the initialize handshake). With `--quiet-changes` it
says nothing of them; with `--header-on-change`, the new definition also mirrors
`charge` into an HTTP header (`x-mcp-header`), so on 2026-07-28 over HTTP a call made
for the old one is refused with HEADER_MISMATCH. `--requests-log PATH` appends the
method of each request it gets to PATH, one per line. With `--typed` the refund tool
declares an output schema (it returns a `Refunded`); `--refund-name NAME` offers it under
another name (a server that renamed it). `--env-log PATH` writes the
environment it started with to PATH, as JSON. Serves stdio, or streamable HTTP with
`--http PORT`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus, ToolsListChanged
from pydantic import BaseModel, Field

DEFAULT_DESCRIPTION = "Refund part or all of a card charge, in cents."
POLL = 0.05  # seconds between looks at the description file
ByHeader = Annotated[str, Field(json_schema_extra={"x-mcp-header": "Charge"})]


class Refunded(BaseModel):
    """A refund as the typed tool answers it (its output schema)."""

    refunded: int
    charge: str


class Payments:
    def __init__(
        self,
        log: str,
        description: str,
        *,
        changes: bool = False,
        quiet: bool = False,
        header_on_change: bool = False,
        requests_log: str = "",
        typed: bool = False,
        declined: tuple[str, str] | None = None,
        refund_name: str = "refund",
        endless_listing: bool = False,
    ) -> None:
        self.log = log
        self.declined = declined  # (charge prefix, error): such refunds raise, once logged
        self.requests_log = requests_log
        self.quiet = quiet
        self.header_on_change = header_on_change
        self.bus = InMemorySubscriptionBus()
        self.sessions: dict[int, Any] = {}  # handshake clients, by connection
        # The bench's server stays as it was: no middleware.
        remember = [self._remember] if changes or requests_log else []
        if endless_listing:
            remember.append(_endless_listing)
        self.server = MCPServer("payments", subscriptions=self.bus, middleware=remember)
        refund = self.refund_typed if typed else self.refund
        self.server.tool(name=refund_name, description=description)(refund)
        self.server.tool(name="balance", description="The account's balance.")(balance)
        # Read-only: the proxy hands these over only when told to (--pass).
        self.server.resource("payments://balance", mime_type="application/json")(balance)
        self.server.resource("payments://charges/{charge}", mime_type="application/json")(charge_of)
        self.server.prompt(name="refund_request")(refund_request)

    def refund(self, charge: str, amount: int) -> dict:
        with open(self.log, "a", encoding="utf-8") as out:
            out.write(json.dumps({"charge": charge, "amount": amount}) + "\n")
        if self.declined and charge.startswith(self.declined[0]):
            raise ToolError(self.declined[1])  # a failure its client is told of in words
        return {"refunded": amount, "charge": charge}

    def refund_typed(self, charge: str, amount: int) -> Refunded:
        return Refunded(**self.refund(charge, amount))

    def refund_by_header(self, charge: ByHeader, amount: int) -> dict:
        return self.refund(charge, amount)

    async def _remember(self, ctx: Any, call_next: Any) -> Any:
        if self.requests_log:
            with open(self.requests_log, "a", encoding="utf-8") as out:
                out.write(f"{ctx.method}\n")
        if ctx.session.client_params is not None:
            self.sessions[id(ctx.session.client_params)] = ctx.session
        return await call_next(ctx)

    async def follow(self, path: Path, description: str) -> None:
        """Define the refund tool anew each time `path`'s text changes, and say so."""
        while True:
            await anyio.sleep(POLL)
            text = path.read_text(encoding="utf-8").strip()
            if text == description:
                continue
            description = text
            self.server.remove_tool("refund")
            refund = self.refund_by_header if self.header_on_change else self.refund
            self.server.tool(name="refund", description=description)(refund)
            if self.quiet:
                continue
            await self.bus.publish(ToolsListChanged())
            for session in list(self.sessions.values()):
                await session.send_tool_list_changed()


async def _endless_listing(ctx: Any, call_next: Any) -> Any:
    """Every page of the tool listing says there is another, after the same cursor."""
    result = await call_next(ctx)
    if ctx.method == "tools/list":
        result["nextCursor"] = "again"  # the wire form, as middleware sees it
    return result


def balance() -> dict:
    return {"balance": 1000}


def charge_of(charge: str) -> dict:
    """A charge as the server knows it (a resource template)."""
    if not charge.startswith("ch_"):
        raise ValueError(f"no such charge: {charge}")
    return {"charge": charge, "amount": 500}


def refund_request(charge: str, reason: str = "duplicate") -> str:
    """Ask the model to refund a charge."""
    return f"Refund charge {charge}: {reason}."


async def serve(args: argparse.Namespace) -> None:
    description_file = Path(args.description_file) if args.description_file else None
    description = args.description
    if description_file:
        description = description_file.read_text(encoding="utf-8").strip()
    payments = Payments(
        args.log,
        description,
        changes=description_file is not None,
        quiet=args.quiet_changes,
        header_on_change=args.header_on_change,
        requests_log=args.requests_log or "",
        typed=args.typed,
        declined=tuple(args.decline) if args.decline else None,
        refund_name=args.refund_name,
        endless_listing=args.endless_listing,
    )
    if args.slow:  # the refund made, then its answer slow to come
        payments.server.remove_tool("refund")

        async def refund(charge: str, amount: int) -> dict:
            done = payments.refund(charge, amount)
            await anyio.sleep(args.slow)
            return done

        payments.server.tool(name="refund", description=description)(refund)
    if args.twins:  # two names that make one action
        for name in ("refund.now", "refund_now"):
            payments.server.tool(name=name, description=f"Refund now ({name}).")(payments.refund)
    if args.env_log:
        Path(args.env_log).write_text(json.dumps(dict(os.environ)), encoding="utf-8")
    async with anyio.create_task_group() as tasks:
        if description_file:
            tasks.start_soon(payments.follow, description_file, description)
        if args.exit_after:
            tasks.start_soon(crash_after, args.exit_after)
        if args.http:
            await payments.server.run_streamable_http_async(host="127.0.0.1", port=args.http)
        else:
            await payments.server.run_stdio_async()
        tasks.cancel_scope.cancel()


async def crash_after(seconds: float) -> None:
    """The process ends at once, as a server that crashed: nothing closed, nothing said."""
    await anyio.sleep(seconds)
    os._exit(3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    parser.add_argument("--description", default=DEFAULT_DESCRIPTION)
    parser.add_argument("--description-file", help="the refund's description, followed")
    parser.add_argument("--quiet-changes", action="store_true", help="do not announce them")
    parser.add_argument("--requests-log", help="append each request's method to this file")
    parser.add_argument(
        "--header-on-change", action="store_true", help="changed, charge is also a header"
    )
    parser.add_argument("--typed", action="store_true", help="refund declares an output schema")
    parser.add_argument("--refund-name", default="refund", help="the refund tool's name")
    parser.add_argument("--env-log", help="write the environment it started with here")
    parser.add_argument("--twins", action="store_true", help="also tools refund.now, refund_now")
    parser.add_argument("--endless-listing", action="store_true", help="tools/list never ends")
    parser.add_argument("--slow", type=float, default=0, help="the refund answers this late")
    parser.add_argument(
        "--decline",
        nargs=2,
        metavar=("PREFIX", "ERROR"),
        help="a refund of a charge starting with PREFIX raises ERROR, once logged",
    )
    parser.add_argument("--http", type=int, default=0, help="serve streamable HTTP on this port")
    parser.add_argument("--exit-after", type=float, default=0, help="crash after this many seconds")
    anyio.run(serve, parser.parse_args())


if __name__ == "__main__":
    main()
