"""Each adapter's example (clients/python/examples/, linked from its docs page) runs as a
reader runs it, offline with the framework's fake model, against the live world: an
allowed refund runs once and the model is told its answer; a refund the world forbids
does not run and the model is told why."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sdk_extras

from .harness import BLOCKED_CHARGE, World

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXTRA_OF = {
    "langgraph_agent.py": "langchain",
    "openai_agents_agent.py": "openai-agents",
    "pydantic_ai_agent.py": "pydantic-ai",
    "claude_agent_hooks.py": "claude-agent",
}


def test_every_example_is_run_here() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXTRA_OF)


def _run(world: World, example: str, charge: str) -> str:
    if sdk_extras.missing(EXTRA_OF[example]):
        sdk_extras.unavailable(sdk_extras.reason(EXTRA_OF[example]))
    env = {**os.environ, "OVERSIGHT_URL": world.url, "OVERSIGHT_TOKEN": world.token}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / example), charge, "10"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("example", sorted(EXTRA_OF))
def test_an_example_runs_an_allowed_call_once(world: World, example: str) -> None:
    charge = f"ch_example_{uuid.uuid4().hex[:8]}"
    shown = _run(world, example, charge)
    assert shown.count(f"refund ran: {charge} 10") == 1, shown


@pytest.mark.parametrize("example", sorted(EXTRA_OF))
def test_an_example_does_not_run_a_forbidden_call_and_says_why(world: World, example: str) -> None:
    shown = _run(world, example, BLOCKED_CHARGE)
    assert "refund ran" not in shown, shown
    assert "blocked" in shown.lower(), shown
