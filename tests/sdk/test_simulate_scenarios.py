"""Fault-injection scenarios: each one's changes apply to the demo, and one played end to
end (plain traffic, the fault with a decoy, more traffic) is named first by the incident
analysis."""

from __future__ import annotations

import io
import json
import random

import pytest
from django.core.management import call_command
from django.test import override_settings

from oversight.agents.models import Agent
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.audit.verbs import ACTION_VERBS
from oversight.core.demo_scenarios import SCENARIOS, Context
from oversight.gateway.management.commands.simulate import Run
from oversight.incidents.analysis.report import analyse
from oversight.incidents.models import TriggerKind
from oversight.incidents.services import incident_open
from oversight.policy.models import Grant, Limit
from oversight.policy.services import policy_object_update
from tests.servers import asgi_server

pytestmark = pytest.mark.postgres

BUCKET = {"INCIDENT_BUCKET_SECONDS": "1", "INCIDENT_LOOKBACK_BUCKETS": "40"}


@pytest.fixture
def demo(transactional_db: None) -> None:
    call_command("seed_demo", "--force", stdout=io.StringIO())


def test_every_scenario_applies_to_the_demo_and_says_what_it_did(demo: None) -> None:
    """One after another on one demo (they change different things)."""
    run = Run(write=lambda line: None, hold_wait=1)
    ctx = Context(Actor.system("simulate"), run, random.Random(1), bucket_seconds=1)
    changes = AuditEvent.objects.exclude(verb__in=ACTION_VERBS)
    for name, scenario in sorted(SCENARIOS.items()):
        before = changes.count()
        said = [step(ctx) for step in [scenario.setup] if step] + [
            step.change(ctx) for step in scenario.steps
        ]
        assert all(isinstance(line, str) and line for line in said), name
        assert sum(step.cause for step in scenario.steps) == 1, name
        assert changes.count() > before, name  # made through the services, audited
        assert Agent.objects.filter(slug=scenario.agent).exists(), name
    assert run.behaviours == {"refund-bot": "with-mcp"}
    assert set(run.drifts) == {"crm-updater"} and run.bursty == {"email-campaigner"}


@pytest.mark.slow
@override_settings(INCIDENT_BUCKET_SECONDS=1, INCIDENT_LOOKBACK_BUCKETS=40)
def test_a_widened_grant_played_after_plain_traffic_is_named_first(demo: None) -> None:
    """Plain traffic: under the demo's 30 emails a minute, 10 a second would be denied from
    the fourth second of each clock minute, a stronger change than the fault's, wherever
    the minute turns. The owner raises the limit first, as for a campaign."""
    limit = Limit.objects.get(agent__slug="email-campaigner", name="emails per minute")
    policy_object_update(actor=Actor.system("tests"), obj=limit, max_count=100_000)
    out = io.StringIO()
    with asgi_server(extra_env={"DJANGO_ALLOW_ASYNC_UNSAFE": "", **BUCKET}) as url:
        call_command(
            "simulate",
            "--url",
            url,
            "--agents",
            "email-campaigner",
            "--rate",
            "10",
            "--seed",
            "3",
            "--hold-wait",
            "0.5",
            "--scenario",
            "widened-grant",
            "--scenario-after",
            "15",
            "--decoys",
            "1",
            "--duration",
            "32",
            stdout=out,
        )
    lines = out.getvalue().splitlines()
    (cause,) = [json.loads(line[6:]) for line in lines if line.startswith("CAUSE ")]
    assert cause["scenario"] == "widened-grant" and cause["agent"] == "email-campaigner"
    verbs = set(AuditEvent.objects.filter(seq__in=cause["seqs"]).values_list("verb", flat=True))
    assert "grant.updated" in verbs
    assert Grant.objects.filter(agent__slug="email-campaigner", action="email.*").exists()
    assert sum("scenario widened-grant:" in line for line in lines) == 2  # the fault, a decoy

    agent = Agent.objects.get(slug="email-campaigner")
    incident, _ = incident_open(
        actor=Actor.system("tests"),
        kind=TriggerKind.MANUAL,
        target=("agents.agent", str(agent.pk)),
        summary="list deletions",
        agent=agent,
    )
    report = analyse(incident)
    first = report["causes"][0]
    assert set(cause["seqs"]) & {event["seq"] for event in first["events"]}, report["causes"]
    assert first["touches"] == ["email.*", "email.send"]
