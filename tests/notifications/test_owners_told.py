"""Owners hear about their own agents: alerts and the automatic hold, kill switches,
and held actions that expired undecided (digested when many)."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from oversight.agents.constants import AlertResponse
from oversight.agents.models import Agent
from oversight.gateway.lifecycle import action_expire_if_due
from oversight.killswitch.selectors import Target
from oversight.killswitch.services import killswitch_engage, killswitch_release
from oversight.monitoring.services import Finding, alert_raise
from oversight.notifications.constants import DIGEST_AFTER, Kind
from oversight.notifications.models import InboxItem
from tests.conftest import SYSTEM
from tests.gateway.helpers import expire
from tests.notifications.conftest import hold, set_channels

pytestmark = pytest.mark.django_db


def _items(user: Any, kind: str) -> list[InboxItem]:
    return list(InboxItem.objects.filter(user=user, kind=kind).order_by("created_at", "id"))


def _finding(agent: Agent, severity: str, key: str = "volume") -> Finding:
    return Finding(
        agent_id=agent.pk,
        kind="volume",
        severity=severity,
        dedupe_key=key,
        title="Refund bot's volume is 9 times its usual",
        numbers={"count": 90},
    )


# --- alerts -----------------------------------------------------------------------------


def test_the_owner_is_told_when_an_alert_opens_on_her_agent(
    agent: Agent, owner: Any, rita: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        alert_raise(finding=_finding(agent, "warning"), now=timezone.now())
    for person in (owner, rita):
        (item,) = _items(person, Kind.ALERT_OPENED)
        assert "volume is 9 times" in item.title
        assert item.link.startswith("/alerts/")


def test_the_owner_is_told_of_the_automatic_hold_everything(
    agent: Agent,
    owner: Any,
    team: Any,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    Agent.objects.filter(pk=agent.pk).update(alert_response=AlertResponse.HOLD)
    set_channels(team, email=True)
    with django_capture_on_commit_callbacks(execute=True):
        alert_raise(finding=_finding(agent, "critical"), now=timezone.now())
    (item,) = _items(owner, Kind.ALERT_OPENED)
    assert "Every action of the agent is now held for a human" in item.body
    assert [m.to for m in mailoutbox] == [[owner.email]]
    assert "now held for a human" in mailoutbox[0].body


def test_the_owner_is_told_when_an_alert_turns_critical_and_holds_everything(
    agent: Agent, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    Agent.objects.filter(pk=agent.pk).update(alert_response=AlertResponse.HOLD)
    with django_capture_on_commit_callbacks(execute=True):
        alert_raise(finding=_finding(agent, "warning"), now=timezone.now())
        alert_raise(finding=_finding(agent, "critical"), now=timezone.now())
        alert_raise(finding=_finding(agent, "critical"), now=timezone.now())  # no news
    (item,) = _items(owner, Kind.ALERT_ESCALATED)
    assert item.body.startswith("An alert on Refund bot is now critical: ")  # not "Critical
    # alert on Refund bot raised to critical"
    assert "now held for a human" in item.body


# --- kill switches ---------------------------------------------------------------------


def test_owners_find_kill_switches_on_their_agents_in_the_inbox(
    agent: Agent,
    other_agent: Agent,
    owner: Any,
    outsider: Any,
    team: Any,
    admin_user: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """No channels on: the inbox is told anyway. Each owner hears of their own agents."""
    target = Target(scope="team", team=team)
    with django_capture_on_commit_callbacks(execute=True):
        killswitch_engage(actor=SYSTEM, target=target, reason="refund storm", user=admin_user)
    (item,) = _items(owner, Kind.KILLSWITCH_ENGAGED)
    assert item.title == "Kill switch engaged for team payments"
    assert "refund storm" in item.body and "Refund bot" in item.body
    assert item.link == f"/agents/{agent.slug}/"
    assert not InboxItem.objects.filter(user=outsider).exists()

    with django_capture_on_commit_callbacks(execute=True):
        killswitch_release(actor=SYSTEM, target=target, reason="fixed", user=admin_user)
    (released,) = _items(owner, Kind.KILLSWITCH_RELEASED)
    assert "no longer stops your agent Refund bot" in released.body


def test_a_global_switch_tells_each_owner_once(
    agent: Agent,
    other_agent: Agent,
    owner: Any,
    outsider: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        killswitch_engage(actor=SYSTEM, target=Target(scope="global"), reason="incident")
    assert len(_items(owner, Kind.KILLSWITCH_ENGAGED)) == 1
    assert len(_items(outsider, Kind.KILLSWITCH_ENGAGED)) == 1


# --- expiries ----------------------------------------------------------------------------


def _expire(agent: Agent, capture: Any, n: int = 1) -> None:
    for i in range(n):
        action = hold(agent, resource=f"stripe:charge/ch_{i}")
        expire(action)
        action.refresh_from_db()
        with capture(execute=True):
            action_expire_if_due(action=action)


def test_the_owner_is_told_when_a_held_action_expires(
    agent: Agent,
    owner: Any,
    team: Any,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, email=True)
    _expire(agent, django_capture_on_commit_callbacks)
    (item,) = _items(owner, Kind.ACTION_EXPIRED)
    assert item.title == "Expired undecided: payments.refund on stripe:charge/ch_0 (Refund bot)"
    assert item.link.startswith("/actions/")
    assert [m.to for m in mailoutbox] == [[owner.email]]
    assert "counts as denied" in mailoutbox[0].body


def test_many_expiries_make_one_digest(
    agent: Agent, owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _expire(agent, django_capture_on_commit_callbacks, n=DIGEST_AFTER + 4)
    assert len(_items(owner, Kind.ACTION_EXPIRED)) == DIGEST_AFTER
    (digest,) = _items(owner, Kind.ACTIONS_EXPIRED)
    assert (
        digest.title == f"{DIGEST_AFTER + 4} held actions of Refund bot expired undecided this hour"
    )
