"""manage.py seed_demo: a known demo organisation, only on purpose, and safe to run again."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from oversight.accounts.models import Team
from oversight.agents.models import Agent
from oversight.agents.permissions import user_has_agent_perm
from oversight.approvals.eligibility import rule_eligible_approvers, rule_unsatisfiable
from oversight.audit.models import AuditEvent
from oversight.audit.verification import audit_chain_verify
from oversight.core import demo
from oversight.policy.models import Rule

pytestmark = pytest.mark.django_db


def _seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def _user(username: str) -> Any:
    return get_user_model().objects.get(username=username)


def test_it_refuses_to_run_without_debug(settings: Any) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--force"):
        _seed()
    assert not get_user_model().objects.exists()
    assert not Agent.objects.exists()
    assert not AuditEvent.objects.exists()


def test_it_runs_without_force_when_debug_is_on(settings: Any) -> None:
    settings.DEBUG = True
    _seed()
    assert Agent.objects.count() == 10


def test_with_force_it_creates_the_demo_organisation() -> None:
    output = _seed("--force")
    assert get_user_model().objects.count() == 9
    assert Team.objects.count() == 4
    assert Agent.objects.count() == 10
    assert "10 agents created" in output
    assert set(Agent.objects.values_list("slug", flat=True)) == {a[0] for a in demo.AGENTS}


def test_it_prints_each_username_with_a_password_that_works() -> None:
    lines = _seed("--force").splitlines()
    for username, *_rest in demo.USERS:
        password = username + demo.DEMO_PASSWORD_SUFFIX
        assert any(line.split()[:2] == [username, password] for line in lines if line.strip())
        assert authenticate(username=username, password=password) == _user(username)


def test_it_names_the_port_the_demo_serves_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8765")  # PORT=8765 bin/demo
    assert "Log in at http://127.0.0.1:8765/ as:" in _seed("--force")
    monkeypatch.delenv("PORT")
    assert "Log in at http://127.0.0.1:8000/ as:" in _seed("--force")


def test_it_gives_each_demo_user_their_role_and_access() -> None:
    _seed("--force")
    assert _user("admin").is_superuser and _user("admin").is_staff
    assert not _user("alice").is_staff
    refund = Agent.objects.get(slug="refund-bot")
    campaign = Agent.objects.get(slug="email-campaigner")
    assert refund.owner == _user("alice") and refund.team.slug == "payments"
    assert user_has_agent_perm(_user("carol"), "view_agent", refund)
    assert not user_has_agent_perm(_user("carol"), "change_agent", refund)
    assert user_has_agent_perm(_user("rita"), "approve_agent", refund)
    assert not user_has_agent_perm(_user("rita"), "view_agent", campaign)
    assert user_has_agent_perm(_user("aaron"), "view_agent", campaign)
    assert not user_has_agent_perm(_user("aaron"), "approve_agent", campaign)
    assert user_has_agent_perm(_user("rob"), "approve_agent", campaign)  # growth's reviewer


def test_every_demo_hold_rule_can_be_approved() -> None:
    _seed("--force")
    for rule in Rule.objects.filter(effect="hold").select_related("agent__team"):
        assert rule_unsatisfiable(rule) == "", rule.name
    deploys = Rule.objects.get(name="production deploys need two people")
    eligible = [u.username for u in rule_eligible_approvers(deploys)]
    assert eligible == ["rita", "rob"] and deploys.agent.owner.username not in eligible


def test_running_it_twice_creates_nothing_new() -> None:
    _seed("--force")
    counts = (
        get_user_model().objects.count(),
        Team.objects.count(),
        Agent.objects.count(),
        AuditEvent.objects.count(),
    )
    output = _seed("--force")
    assert "0 agents created" in output
    assert (
        get_user_model().objects.count(),
        Team.objects.count(),
        Agent.objects.count(),
        AuditEvent.objects.count(),
    ) == counts


def test_the_audit_chain_verifies_after_seeding_twice() -> None:
    _seed("--force")
    _seed("--force")
    checked, broken = audit_chain_verify()
    assert broken is None
    assert checked == AuditEvent.objects.count() > 0
    assert AuditEvent.objects.filter(verb="agent.created").count() == 10


def test_the_demo_teams_have_email_on_for_the_dev_outbox() -> None:
    from oversight.notifications.models import TeamChannels

    output = _seed("--force")
    assert TeamChannels.objects.filter(email_enabled=True).count() == 4
    # A team's own choice is kept on a second run.
    TeamChannels.objects.filter(team__slug="growth").update(email_enabled=False)
    _seed("--force")
    assert not TeamChannels.objects.get(team__slug="growth").email_enabled
    assert "dev/outbox" not in output  # DEV_OUTBOX is off outside DEBUG


def test_the_demo_refund_bot_may_call_the_mcp_refund_tool_and_big_ones_are_held() -> None:
    """docs/integrations/mcp.md's example runs against the demo: refund-bot's token in
    front of a "payments" MCP server (mcp.payments.refund)."""
    from oversight.agents.services import token_create
    from tests.conftest import SYSTEM
    from tests.gateway.helpers import decide

    _seed("--force")
    token = token_create(
        actor=SYSTEM, agent=Agent.objects.get(slug="refund-bot"), environment="production"
    )[0]
    call = {"action": "mcp.payments.refund", "resource": "stripe:charge/ch_mcp"}
    small = decide(token, {**call, "params": {"charge": "ch_mcp", "amount": 10}})
    big = decide(token, {**call, "params": {"charge": "ch_mcp", "amount": 900}})
    assert (small.status, big.status) == ("allowed", "pending")
