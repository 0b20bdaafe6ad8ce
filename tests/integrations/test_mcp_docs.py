"""docs/integrations/mcp.md's set-up, as a reader follows it: its manifest applies, and
the agent it describes is decided as the page says."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from oversight.accounts.services import team_create
from oversight.agents.models import Agent
from oversight.agents.services import token_create
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide

pytestmark = pytest.mark.django_db

PAGE = Path(__file__).resolve().parents[2] / "docs" / "integrations" / "mcp.md"


def _manifest() -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) == 1, "the page shows one manifest"
    lines = blocks[0].splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "\n".join(line[indent:] for line in lines) + "\n"


def test_the_pages_manifest_applies_and_decides_as_the_page_says(owner: Any, reviewer: Any) -> None:
    team = team_create(actor=SYSTEM, name="payments", description="Refunds and disputes.")
    out = StringIO()
    call_command("policy_apply", "-", stdin=StringIO(_manifest()), stdout=out)
    team.refresh_from_db()
    assert team.description == "Refunds and disputes."  # an existing team keeps it
    assert "payments-agent" in out.getvalue()
    agent = Agent.objects.get(slug="payments-agent")
    assert agent.owner == owner
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]

    def call(tool: str, amount: int) -> str:
        body = {
            "action": f"mcp.payments.{tool}",
            "resource": "stripe:charge/ch_1",
            "params": {"charge": "ch_1", "amount": amount},
        }
        return decide(token, body).status

    assert call("refund", 50) == "allowed"
    assert call("refund", 150) == "pending"  # over 100: for a reviewer
    assert call("delete_customer", 1) == "denied"  # no grant: not even listed
