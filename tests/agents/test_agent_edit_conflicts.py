"""An edit form saved after someone else changed the agent: it changes only what its
editor changed, and says so where it would overwrite another's change. And the rules an
edit keeps: an overdue re-certification is not skipped by a new interval, an owner outside
the agent's team can still save, an environment dropped takes its tokens with it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.accounts.services import team_create
from oversight.agents.models import Agent, AgentToken
from oversight.agents.services import agent_create, agent_update, token_create
from oversight.audit.models import AuditEvent
from tests.conftest import SYSTEM
from tests.forms import form_data

pytestmark = pytest.mark.django_db


def _opened(client: Client, user: Any, agent: Agent) -> dict[str, Any]:
    """The edit form as its page shows it, hidden values included."""
    client.force_login(user)
    response = client.get(reverse("agents:edit", args=[agent.slug]))
    assert response.status_code == 200
    return form_data(response.content, "agent-form")


def _save(client: Client, agent: Agent, data: dict[str, Any]) -> Any:
    return client.post(reverse("agents:edit", args=[agent.slug]), data)


def test_a_stale_form_keeps_a_pause_made_since(
    client: Client, owner: Any, admin_user: Any, agent: Agent
) -> None:
    data = _opened(client, owner, agent)
    assert data["status"] == "active"
    agent_update(actor=SYSTEM, agent=agent, status="paused")  # an admin, or monitoring

    response = _save(client, agent, {**data, "purpose": "Refunds, and only refunds."})

    assert response.status_code == 302
    fresh = Agent.objects.get(pk=agent.pk)
    assert (fresh.status, fresh.purpose) == ("paused", "Refunds, and only refunds.")
    last = AuditEvent.objects.filter(verb="agent.updated", agent_id=agent.pk).latest("seq")
    assert set(last.after) ^ set(last.before) == set()
    assert last.before["status"] == last.after["status"] == "paused"


def test_a_field_both_changed_is_refused_then_saved_knowingly(
    client: Client, owner: Any, agent: Agent
) -> None:
    data = _opened(client, owner, agent)
    agent_update(actor=SYSTEM, agent=agent, purpose="Changed by Bob meanwhile.")
    updates = AuditEvent.objects.filter(verb="agent.updated", agent_id=agent.pk).count()

    response = _save(client, agent, {**data, "purpose": "Mine.", "risk_tier": "low"})

    assert response.status_code == 200
    form = response.context["form"]
    assert "Changed by someone else since you opened this form: now Changed by Bob" in " ".join(
        form.errors["purpose"]
    )
    fresh = Agent.objects.get(pk=agent.pk)
    assert (fresh.purpose, fresh.risk_tier) == ("Changed by Bob meanwhile.", "high")
    assert AuditEvent.objects.filter(verb="agent.updated", agent_id=agent.pk).count() == updates

    # The form now shows Bob's value as what it showed: saving again is a choice made.
    again = form_data(response.content, "agent-form")
    assert again["purpose"] == "Mine."
    assert _save(client, agent, again).status_code == 302
    fresh = Agent.objects.get(pk=agent.pk)
    assert (fresh.purpose, fresh.risk_tier) == ("Mine.", "low")


def test_the_same_change_made_meanwhile_is_no_conflict(
    client: Client, owner: Any, agent: Agent
) -> None:
    data = _opened(client, owner, agent)
    agent_update(actor=SYSTEM, agent=agent, risk_tier="low")
    assert _save(client, agent, {**data, "risk_tier": "low"}).status_code == 302


def test_an_unchanged_form_saved_late_changes_nothing(
    client: Client, owner: Any, agent: Agent
) -> None:
    data = _opened(client, owner, agent)
    agent_update(actor=SYSTEM, agent=agent, status="paused", risk_tier="critical")
    assert _save(client, agent, data).status_code == 302
    fresh = Agent.objects.get(pk=agent.pk)
    assert (fresh.status, fresh.risk_tier) == ("paused", "critical")


def test_a_new_interval_does_not_move_a_passed_date_nor_reactivate(
    client: Client, owner: Any, agent: Agent
) -> None:
    due = timezone.localdate() - dt.timedelta(days=110)
    Agent.objects.filter(pk=agent.pk).update(next_review_due=due, status="paused")
    agent.refresh_from_db()
    data = _opened(client, owner, agent)

    response = _save(client, agent, {**data, "review_interval_days": 730, "status": "active"})

    assert response.status_code == 200
    assert "re-certification is 110 days overdue: re-certify Refund bot first" in " ".join(
        response.context["form"].errors["status"]
    )
    fresh = Agent.objects.get(pk=agent.pk)
    assert (fresh.status, fresh.next_review_due, fresh.review_interval_days) == ("paused", due, 90)

    # The interval alone may change; the date that passed stays until a re-certification.
    assert _save(client, agent, {**data, "review_interval_days": 730}).status_code == 302
    fresh = Agent.objects.get(pk=agent.pk)
    assert (fresh.review_interval_days, fresh.next_review_due) == (730, due)


def test_an_owner_outside_the_agents_team_can_save(
    client: Client, owner: Any, outsider: Any, agent: Agent
) -> None:
    agent_update(actor=SYSTEM, agent=agent, owner=outsider)  # mallory: not in payments
    data = _opened(client, outsider, agent)
    assert data["team"] == str(agent.team_id)
    assert _save(client, agent, {**data, "purpose": "Still refunds."}).status_code == 302
    fresh = Agent.objects.get(pk=agent.pk)
    assert (fresh.team_id, fresh.purpose) == (agent.team_id, "Still refunds.")


def test_dropping_an_environment_revokes_its_tokens(
    client: Client, owner: Any, agent: Agent
) -> None:
    production, _ = token_create(actor=SYSTEM, agent=agent, environment="production")
    staging, _ = token_create(actor=SYSTEM, agent=agent, environment="staging")
    data = _opened(client, owner, agent)

    assert _save(client, agent, {**data, "environments": ["staging"]}).status_code == 302

    assert AgentToken.objects.get(pk=production.pk).revoked_at is not None
    assert AgentToken.objects.get(pk=staging.pk).revoked_at is None
    assert AuditEvent.objects.filter(verb="token.revoked", agent_id=agent.pk).count() == 1


@pytest.mark.parametrize(
    ("name", "slug", "words"),
    [
        ("new", "", "The name makes the slug 'new', which is a page of the registry"),
        ("Anything", "new", "This slug is a page of the registry"),
        ("Anything", "Refund-Bot", "lowercase letters, digits and single hyphens"),
        ("Anything", "refund_bot", "lowercase letters, digits and single hyphens"),
        ("Refund_Bot", "", "The name makes the slug 'refund-bot', which is taken"),
        # Said of the slug field the person left empty: what to do there.
        ("返金ボット", "", "The name makes no slug (none of its letters is a to z): type one"),
        (
            "Nightly reconciliation agent for the European payments ledger and chargebacks",
            "",
            "The name makes a slug of 77 characters, more than 60: type a shorter one.",
        ),
    ],
)
def test_a_new_agents_slug_is_one_of_its_own(
    client: Client, owner: Any, team: Any, agent: Agent, name: str, slug: str, words: str
) -> None:
    client.force_login(owner)
    page = client.get(reverse("agents:create"))
    data = {
        **form_data(page.content, "agent-form"),
        "name": name,
        "slug": slug,
        "purpose": "A test.",
        "team": team.pk,
    }
    response = client.post(reverse("agents:create"), data)
    assert response.status_code == 200
    assert words in " ".join(response.context["form"].errors["slug"])
    assert Agent.objects.count() == 1


def test_a_made_slug_joins_words_with_single_hyphens(team: Any, owner: Any) -> None:
    made = agent_create(actor=SYSTEM, name="QA  bot__two", purpose="x", owner=owner, team=team)
    assert made.slug == "qa-bot-two"


def test_the_interval_says_at_least_a_day_for_any_number_below(
    client: Client, owner: Any, agent: Agent
) -> None:
    data = _opened(client, owner, agent)
    for days in (-5, 0):
        response = _save(client, agent, {**data, "review_interval_days": days})
        assert response.status_code == 200
        errors = response.context["form"].errors["review_interval_days"]
        assert errors == ["Ensure this value is greater than or equal to 1."], errors


def test_another_team_is_still_not_a_choice(client: Client, owner: Any, agent: Agent) -> None:
    elsewhere = team_create(actor=SYSTEM, name="elsewhere")
    data = _opened(client, owner, agent)
    response = _save(client, agent, {**data, "team": elsewhere.pk})
    assert response.status_code == 200
    assert Agent.objects.get(pk=agent.pk).team_id == agent.team_id
