"""`oversight-mcp`: an MCP proxy that asks Oversight before every tool call.

Needs the `mcp` extra (`pip install './clients/python[mcp]'`). See cli.py for the command,
proxy.py for what a call becomes, and docs/integrations/mcp.md.
"""

from .._extras import extra

with extra("mcp", __name__):
    from .calls import Naming
    from .proxy import Proxy, Settings

__all__ = ["Naming", "Proxy", "Settings"]
