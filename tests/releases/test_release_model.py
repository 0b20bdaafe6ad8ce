"""Releases: cut by every change of config, grants and rules; content-addressed; immutable;
recorded on each decision."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from oversight.agents.services import agent_update, token_create
from oversight.audit.models import AuditEvent
from oversight.policy.models import Grant, Limit, Rule
from oversight.policy.services import (
    policy_object_create,
    policy_object_delete,
    policy_object_update,
)
from oversight.releases.content import digest
from oversight.releases.models import ImmutableReleaseError, Release
from tests.conftest import SYSTEM
from tests.gateway.helpers import REFUND, decide, grant_refunds, refund

pytestmark = pytest.mark.django_db


def _versions(agent: Any) -> list[int]:
    return list(
        Release.objects.filter(agent=agent).order_by("version").values_list("version", flat=True)
    )


def test_a_new_agent_has_release_1_in_force(agent: Any) -> None:
    agent.refresh_from_db()
    release = agent.stable_release
    assert (release.version, agent.stable_version) == (1, 1)
    assert release.content == {
        "config": {"instructions": "", "model_name": "", "model_settings": {}, "tools": []},
        "grants": [],
        "rules": [],
    }
    assert release.digest == digest(release.content)
    verbs = set(AuditEvent.objects.filter(agent_id=agent.pk).values_list("verb", flat=True))
    assert {"release.created", "release.promoted"} <= verbs


def test_each_grant_or_rule_change_is_one_release(agent: Any) -> None:
    grant = grant_refunds(agent)
    assert _versions(agent) == [1, 2]
    rule = policy_object_create(
        actor=SYSTEM, obj=Rule(agent=agent, name="no big", effect="forbid", action=REFUND)
    )
    policy_object_update(actor=SYSTEM, obj=rule, condition="params.amount > 10")
    policy_object_delete(actor=SYSTEM, obj=grant)
    assert _versions(agent) == [1, 2, 3, 4, 5]
    agent.refresh_from_db()
    latest = agent.stable_release
    assert latest.version == 5 and latest.parent.version == 4
    assert latest.content["grants"] == []
    assert latest.content["rules"][0]["condition"] == "params.amount > 10"


def test_limits_are_not_in_a_release(agent: Any) -> None:
    policy_object_create(
        actor=SYSTEM,
        obj=Limit(agent=agent, name="per hour", action=REFUND, window_seconds=60, max_count=5),
    )
    assert _versions(agent) == [1]


def test_identical_content_is_not_a_new_release(agent: Any) -> None:
    grant = grant_refunds(agent)
    policy_object_delete(actor=SYSTEM, obj=grant)
    assert _versions(agent) == [1, 2, 3]  # back to release 1's content, but a new version
    agent.refresh_from_db()
    assert agent.stable_release.digest == Release.objects.get(agent=agent, version=1).digest
    agent_update(actor=SYSTEM, agent=agent, instructions="")  # no change at all
    assert _versions(agent) == [1, 2, 3]


def test_a_config_edit_is_a_release_and_tools_are_checked(
    client: Client, owner: Any, agent: Any
) -> None:
    client.force_login(owner)
    url = reverse("agents:edit", args=[agent.slug])
    page = client.get(url)
    form = page.context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None and k != "environments"}
    data.update(
        environments=["staging", "production"],
        owner=owner.pk,
        team=agent.team.pk,
        status=agent.status,
        instructions="Refund only what support approved.",
        model_name="claude-sonnet",
        model_settings='{"temperature": 0.2}',
        tools='[{"name": "refund", "description": "Refund a charge", "input_schema": {}}]',
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors
    agent.refresh_from_db()
    assert agent.stable_version == 2
    assert agent.stable_release.content["config"]["model_settings"] == {"temperature": 0.2}
    data["tools"] = '[{"name": "refund"}]'
    response = client.post(url, data)
    assert response.status_code == 200
    assert "give exactly name, description and input_schema" in response.content.decode()
    assert _versions(agent) == [1, 2]


def test_a_release_never_changes(agent: Any) -> None:
    release = Release.objects.get(agent=agent, version=1)
    release.notes = "rewritten"
    with pytest.raises(ImmutableReleaseError):
        release.save()
    with pytest.raises(ImmutableReleaseError):
        release.delete()


def test_policy_apply_is_one_release_per_agent(tmp_path: Any, agent: Any) -> None:
    manifest = tmp_path / "policy.yaml"
    manifest.write_text(
        f"""
teams:
  - name: {agent.team.name}
agents:
  - slug: {agent.slug}
    name: {agent.name}
    purpose: {agent.purpose}
    owner: {agent.owner.username}
    team: {agent.team.name}
    environments: [staging, production]
    risk_tier: high
    grants:
      - action: {REFUND}
        resource: "stripe:charge/*"
      - action: payments.read
        resource: "*"
"""
    )
    call_command("policy_apply", str(manifest))
    assert _versions(agent) == [1, 2]
    agent.refresh_from_db()
    assert len(agent.stable_release.content["grants"]) == 2
    assert agent.stable_release.notes == "policy_apply"
    call_command("policy_apply", str(manifest))
    assert _versions(agent) == [1, 2]


def test_a_decision_records_its_release(agent: Any) -> None:
    token, _ = token_create(actor=SYSTEM, agent=agent, environment="production")
    grant_refunds(agent)
    action = decide(token, refund(10))
    assert action.release_version == 2
    assert Grant.objects.filter(agent=agent).count() == 1


def test_the_demo_agents_get_their_releases() -> None:
    from io import StringIO

    from oversight.agents.models import Agent
    from oversight.core import demo

    call_command("seed_demo", "--force", stdout=StringIO())
    for agent in Agent.objects.all():
        assert agent.stable_release is not None
        assert agent.stable_release.digest == digest(agent.stable_release.content)
        expected = 2 if agent.slug in demo.POLICIES else 1
        assert agent.stable_version == expected, agent.slug
    call_command("seed_demo", "--force", stdout=StringIO())
    assert Release.objects.count() == Agent.objects.count() + len(demo.POLICIES)
