"""A payments MCP server for tests: `refund(charge, amount)` and `balance()`.

Each refund that runs appends its arguments, as one JSON line, to the file named by
`--log` (the side effect tests count). `--description` changes the refund tool's
description (a changed definition, for pinning). Serves stdio, or streamable HTTP with
`--http PORT`.
"""

from __future__ import annotations

import argparse
import json

from mcp.server.mcpserver import MCPServer

DEFAULT_DESCRIPTION = "Refund part or all of a card charge, in cents."


def build(log: str, description: str) -> MCPServer:
    server = MCPServer("payments")

    def refund(charge: str, amount: int) -> dict:
        with open(log, "a", encoding="utf-8") as out:
            out.write(json.dumps({"charge": charge, "amount": amount}) + "\n")
        return {"refunded": amount, "charge": charge}

    def balance() -> dict:
        return {"balance": 1000}

    server.tool(name="refund", description=description)(refund)
    server.tool(name="balance", description="The account's balance.")(balance)
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    parser.add_argument("--description", default=DEFAULT_DESCRIPTION)
    parser.add_argument("--http", type=int, default=0, help="serve streamable HTTP on this port")
    args = parser.parse_args()
    server = build(args.log, args.description)
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
