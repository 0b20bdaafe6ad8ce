"""Registry services: a change and its audit event stand or fall together."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from guardian.shortcuts import get_perms

from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, agent_create, agent_update
from oversight.audit.models import AuditEvent
from tests.conftest import SYSTEM

pytestmark = pytest.mark.django_db


class _Abort(Exception):
    """Raised by a test after a service call, to roll back the enclosing transaction."""


def test_creating_an_agent_without_an_owner_fails_and_leaves_nothing(team: Any) -> None:
    events = AuditEvent.objects.count()
    with pytest.raises((ValidationError, IntegrityError)):
        agent_create(
            actor=SYSTEM, name="Orphan", purpose="Nobody answers for it.", owner=None, team=team
        )
    assert not Agent.objects.exists()
    assert AuditEvent.objects.count() == events


def test_creating_an_agent_for_a_deactivated_owner_fails_and_leaves_nothing(
    team: Any, teammate: Any
) -> None:
    teammate.is_active = False
    teammate.save()
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError, match="deactivated"):
        agent_create(actor=SYSTEM, name="Orphan", purpose="p", owner=teammate, team=team)
    assert not Agent.objects.exists()
    assert AuditEvent.objects.count() == events


def test_creating_an_agent_with_an_unknown_environment_fails(team: Any, owner: Any) -> None:
    with pytest.raises(ValidationError, match="Unknown environment"):
        agent_create(
            actor=SYSTEM, name="Bot", purpose="p", owner=owner, team=team, environments=["moon"]
        )
    assert not Agent.objects.exists()


def test_updating_an_unknown_field_raises_value_error(agent: Any) -> None:
    events = AuditEvent.objects.count()
    with pytest.raises(ValueError, match="slug"):
        agent_update(actor=SYSTEM, agent=agent, slug="renamed")
    with pytest.raises(ValueError, match="next_review_due"):
        agent_update(actor=SYSTEM, agent=agent, name="ok", next_review_due="2030-01-01")
    assert Agent.objects.get(pk=agent.pk).slug == "refund-bot"
    assert Agent.objects.get(pk=agent.pk).name == "Refund bot"
    assert AuditEvent.objects.count() == events


def test_handing_the_agent_to_a_deactivated_owner_changes_nothing(
    agent: Any, owner: Any, teammate: Any
) -> None:
    teammate.is_active = False
    teammate.save()
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError, match="deactivated"):
        agent_update(actor=SYSTEM, agent=agent, owner=teammate, name="Renamed")
    saved = Agent.objects.get(pk=agent.pk)
    assert (saved.owner, saved.name) == (owner, "Refund bot")
    assert "change_agent" in get_perms(owner, saved)
    assert "change_agent" not in get_perms(teammate, saved)
    assert AuditEvent.objects.count() == events


def test_a_zero_review_interval_is_refused_by_the_service(agent: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        agent_update(actor=SYSTEM, agent=agent, review_interval_days=0)
    assert "review_interval_days" in raised.value.message_dict
    saved = Agent.objects.get(pk=agent.pk)
    assert saved.review_interval_days == 90
    assert saved.next_review_due == agent.next_review_due


def test_a_failure_after_the_update_rolls_back_its_audit_event(agent: Any, outsider: Any) -> None:
    """The audit row lives in the caller's transaction: no event survives a change undone."""
    events = AuditEvent.objects.count()
    with pytest.raises(_Abort), transaction.atomic():
        agent_update(actor=SYSTEM, agent=agent, owner=outsider, risk_tier="low")
        assert AuditEvent.objects.filter(verb="agent.updated").count() == 1
        raise _Abort
    saved = Agent.objects.get(pk=agent.pk)
    assert (saved.owner.username, saved.risk_tier) == ("alice", "high")
    assert "change_agent" not in get_perms(outsider, saved)
    assert AuditEvent.objects.count() == events


def test_a_failure_after_the_create_rolls_back_its_audit_event(team: Any, owner: Any) -> None:
    events = AuditEvent.objects.count()
    with pytest.raises(_Abort), transaction.atomic():
        agent_create(actor=SYSTEM, name="Short lived", purpose="p", owner=owner, team=team)
        raise _Abort
    assert not Agent.objects.exists()
    assert AuditEvent.objects.count() == events


def test_an_update_records_only_a_real_change(agent: Any) -> None:
    agent_update(actor=SYSTEM, agent=agent, name="Refund bot", risk_tier="high")
    assert not AuditEvent.objects.filter(verb="agent.updated").exists()
    agent_update(actor=SYSTEM, agent=agent, risk_tier="low")
    event = AuditEvent.objects.get(verb="agent.updated")
    assert (event.before["risk_tier"], event.after["risk_tier"]) == ("high", "low")
    assert event.agent_id == agent.pk


def test_granting_the_same_access_twice_records_it_once(agent: Any, reviewer: Any) -> None:
    assert agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    assert not agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    assert AuditEvent.objects.filter(verb="agent.access_granted").count() == 1
    assert set(get_perms(reviewer, agent)) == {"view_agent", "approve_agent"}


def test_two_agents_in_service_cannot_share_a_name(agent: Any, team: Any, owner: Any) -> None:
    """Cards, queues and messages name agents: a second "Refund bot" (any case) is
    refused, made or renamed, and nothing changes; a retired one's name may be reused."""
    from oversight.reviews.services import agent_retire

    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError, match="Another agent is named “Refund bot”"):
        agent_create(
            actor=SYSTEM, name="refund BOT", slug="refunds-2", purpose="p", owner=owner, team=team
        )
    assert (Agent.objects.count(), AuditEvent.objects.count()) == (1, events)
    other = agent_create(actor=SYSTEM, name="Email bot", purpose="p", owner=owner, team=team)
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationError, match="its slug is refund-bot"):
        agent_update(actor=SYSTEM, agent=other, name="Refund Bot")
    other.refresh_from_db()
    assert (other.name, AuditEvent.objects.count()) == ("Email bot", events)
    agent_retire(actor=SYSTEM, agent=agent, reason="replaced")
    agent_update(actor=SYSTEM, agent=other, name="Refund bot")
    assert Agent.objects.filter(name="Refund bot").count() == 2


def test_a_retired_agent_is_changed_by_no_one_not_even_from_the_admin_site(
    agent: Any, admin_user: Any, client: Any
) -> None:
    """An admin set a retired agent's status back to active on the admin site; the docs
    say retirement cannot be undone from the site."""
    from django.urls import reverse

    from oversight.agents.access import AgentRetired
    from oversight.agents.constants import AgentStatus
    from oversight.agents.services import agent_update
    from oversight.reviews.services import agent_retire

    agent_retire(actor=SYSTEM, agent=agent, reason="replaced")
    with pytest.raises(AgentRetired, match="is retired: it is kept read-only"):
        agent_update(actor=SYSTEM, agent=agent, status=AgentStatus.ACTIVE)
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    change = reverse("admin:agents_agent_change", args=[agent.pk])
    page = client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    form = {"name": agent.name, "status": AgentStatus.ACTIVE, "_save": "Save"}
    assert client.post(change, form).status_code == 403
    agent.refresh_from_db()
    assert agent.status == AgentStatus.RETIRED
