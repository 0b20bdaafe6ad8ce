"""The package's console scripts, importable without any extra: each says in one line
which extra to install when its own is missing, instead of a traceback."""

from __future__ import annotations

import sys

from ._extras import ExtraNotInstalled


def oversight_mcp() -> int:
    """`oversight-mcp`: the MCP proxy's command (oversight_sdk/mcp/cli.py)."""
    try:
        from .mcp.cli import main
    except ExtraNotInstalled as exc:
        print(f"oversight-mcp: {exc}", file=sys.stderr)
        return 2
    return main()
