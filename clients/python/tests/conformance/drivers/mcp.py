"""The conformance driver for the MCP proxy: a real MCP client session calls `refund`
through `oversight-mcp`, which wraps the payments MCP server (../../mcp_payments_server.py)
over stdio. The tool is "refund" on the server "payments": the action
mcp.payments.refund on stripe:charge/{charge}, params = the arguments.

A held call waits as the proxy waits (its default, 50 s); the harness votes meanwhile.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from oversight_sdk.mcp.calls import ACTION_META

from ..harness import DECLINED, DECLINED_PREFIX, Seen

PAYMENTS_SERVER = Path(__file__).resolve().parents[2] / "mcp_payments_server.py"


class McpDriver:
    name = "mcp"

    def call(self, *, url: str, token: str, arguments: dict[str, Any]) -> Seen:
        with tempfile.TemporaryDirectory(prefix="conformance-mcp-") as tmp:
            log = Path(tmp) / "refunds.jsonl"
            proxy_args = [
                "-m",
                "oversight_sdk.mcp.cli",
                "--resource",
                "refund=stripe:charge/{charge}",
                "--",
                sys.executable,
                str(PAYMENTS_SERVER),
                "--log",
                str(log),
                "--decline",
                DECLINED_PREFIX,
                DECLINED,
            ]
            params = StdioServerParameters(
                command=sys.executable,
                args=proxy_args,
                env={"OVERSIGHT_URL": url, "OVERSIGHT_TOKEN": token},
            )
            result = anyio.run(_call, params, arguments)
            executed = (
                [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
            )
        meta = result.meta or {}
        return Seen(
            executed=executed,
            text="\n".join(b.text for b in result.content if isinstance(b, types.TextContent)),
            is_error=bool(result.is_error),
            action_id=meta.get(ACTION_META),
        )


async def _call(params: StdioServerParameters, arguments: dict[str, Any]) -> types.CallToolResult:
    async with Client(params, read_timeout_seconds=120) as client:
        return await client.call_tool("refund", arguments)


DRIVER = McpDriver()
