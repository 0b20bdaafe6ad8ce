"""An agent's traffic in its audit history, without running the decision path."""

from __future__ import annotations

from django.db import transaction

from oversight.agents.models import Agent
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.services import audit_record


def traffic(agent: Agent, n: int, verb: str = verbs.ACTION_DECIDED) -> None:
    """``n`` action events of the agent, as the decision path records them."""
    for i in range(n):
        with transaction.atomic():
            audit_record(
                actor=Actor.for_agent(agent),
                verb=verb,
                target=("gateway.action", str(i), f"payments.refund on charge {i}"),
                after={"status": "allowed"},
                agent_id=agent.pk,
            )
