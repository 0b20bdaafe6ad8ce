"""The integrations' optional extras: each framework is installed only by those who use it.

An integration imported without its extra says which extra to install, instead of naming a
module its user may never have heard of (`No module named 'mcp_types'`):

    with extra("langchain", __name__):
        from langchain.agents.middleware import AgentMiddleware
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

# Each extra of pyproject.toml's optional-dependencies, and the modules it provides that
# the integration imports.
EXTRAS: dict[str, tuple[str, ...]] = {
    "mcp": ("mcp", "mcp_types"),
    "langchain": ("langchain", "langchain_core", "langgraph"),
    "openai-agents": ("agents",),
    "pydantic-ai": ("pydantic_ai",),
    "claude-agent": ("claude_agent_sdk",),
}


class ExtraNotInstalled(ModuleNotFoundError):
    """An integration was imported without its extra."""


def missing(name: str) -> list[str]:
    """The modules of extra `name` that cannot be imported here."""
    return [module for module in EXTRAS[name] if importlib.util.find_spec(module) is None]


@contextmanager
def extra(name: str, by: str) -> Iterator[None]:
    """Module `by`'s imports of extra `name`'s framework: a module missing among them is
    reported as the extra not installed, with the command that installs it."""
    try:
        yield
    except ModuleNotFoundError as exc:
        raise ExtraNotInstalled(
            f"{by} needs the {name!r} extra (no module {exc.name!r} here): install the "
            f"package with it, from the Oversight repository: pip install "
            f"'./clients/python[{name}]'",
            name=exc.name,
        ) from exc
