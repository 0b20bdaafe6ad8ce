"""The review pages: who sees what, who may act, and what each button does."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.audit.models import AuditEvent
from oversight.monitoring.models import Alert
from oversight.policy.models import Grant
from oversight.reviews.models import Review
from tests.reviews.helpers import DAY, act, fresh, grant

pytestmark = pytest.mark.django_db


def page(agent: Agent) -> str:
    return reverse("reviews:agent", args=[agent.slug])


def remove_url(agent: Agent, g: Grant) -> str:
    return reverse("reviews:grant-remove", args=[agent.slug, g.pk])


def as_user(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def test_the_owner_sees_usage_alerts_and_the_outcome_forms(
    client: Client, owner: Any, agent: Agent
) -> None:
    now = timezone.now()
    used = grant(agent, "payments.refund", "stripe:*", age_days=120)
    unused = grant(agent, "payments.void", age_days=120)
    act(agent, at=now - DAY, grants=(used,))
    act(agent, at=now - DAY, status="denied")
    Alert.objects.create(
        agent=agent,
        kind="volume",
        severity="critical",
        title="Volume 12x baseline",
        dedupe_key="volume",
        opened_at=now - DAY,
        last_seen_at=now,
    )
    response = as_user(client, owner).get(page(agent))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Re-certification of Refund bot" in html
    assert "Issues refunds for support tickets." in html
    assert "Volume 12x baseline" in html
    assert "50.0%" in html  # one denial in two actions
    assert remove_url(agent, used) in html and remove_url(agent, unused) in html
    rows = {row.grant.pk: row for row in response.context["grants"]}
    assert (rows[used.pk].uses_30d, rows[used.pk].unused) == (1, False)
    assert rows[unused.pk].unused
    assert 'class="unused"' in html
    assert reverse("reviews:recertify", args=[agent.slug]) in html


def test_a_teammate_reads_the_page_but_cannot_act(
    client: Client, teammate: Any, agent: Agent
) -> None:
    g = grant(agent, "payments.void")
    as_user(client, teammate)
    response = client.get(page(agent))
    assert response.status_code == 200
    html = response.content.decode()
    assert "You can read it" in html
    assert remove_url(agent, g) not in html
    assert reverse("reviews:recertify", args=[agent.slug]) not in html
    assert client.post(remove_url(agent, g)).status_code == 403
    recertify = reverse("reviews:recertify", args=[agent.slug])
    assert client.post(recertify, {"purpose_confirmed": "on"}).status_code == 403
    retire = reverse("reviews:retire", args=[agent.slug])
    assert client.post(retire, {"reason": "x", "confirm": "on"}).status_code == 403
    assert Grant.objects.filter(pk=g.pk).exists()
    assert fresh(agent).status == "active"


def test_outsiders_get_404(client: Client, outsider: Any, agent: Agent) -> None:
    g = grant(agent, "payments.void")
    as_user(client, outsider)
    assert client.get(page(agent)).status_code == 404
    assert client.post(remove_url(agent, g)).status_code == 404
    assert Grant.objects.filter(pk=g.pk).exists()


def test_an_admin_may_review(client: Client, admin_user: Any, agent: Agent) -> None:
    g = grant(agent, "payments.void")
    response = as_user(client, admin_user).post(remove_url(agent, g))
    assert response.status_code == 302
    assert not Grant.objects.filter(pk=g.pk).exists()


def test_removing_a_grant_with_htmx_returns_the_grants_panel(
    client: Client, owner: Any, agent: Agent
) -> None:
    keep, drop = grant(agent, "payments.refund"), grant(agent, "payments.void")
    response = as_user(client, owner).post(remove_url(agent, drop), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith('<section class="card" id="review-grants">')
    assert "Removed in this re-certification" in html and "payments.void on *" in html
    assert remove_url(agent, keep) in html
    # Pressed twice (a second tab): a clear error, nothing else changes.
    again = client.post(remove_url(agent, drop), HTTP_HX_REQUEST="true")
    assert again.status_code == 409
    assert "already removed" in again.content.decode()
    assert Grant.objects.filter(agent=agent).count() == 1


def test_recertifying_from_the_page(client: Client, owner: Any, agent: Agent) -> None:
    drop = grant(agent, "payments.void")
    as_user(client, owner).post(remove_url(agent, drop))
    response = client.post(
        reverse("reviews:recertify", args=[agent.slug]),
        {"purpose_confirmed": "on", "notes": "Still used by support."},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == page(agent)
    html = response.content.decode()
    assert "re-certified (access reduced first)" in html
    review = Review.objects.get()
    assert (review.outcome, review.reviewed_by, review.notes) == (
        "reduced",
        owner,
        "Still used by support.",
    )
    assert "Still used by support." in html  # in the history table


def test_recertifying_without_confirming_the_purpose_changes_nothing(
    client: Client, owner: Any, agent: Agent
) -> None:
    due = fresh(agent).next_review_due
    response = as_user(client, owner).post(
        reverse("reviews:recertify", args=[agent.slug]), {"notes": "ok"}
    )
    assert response.status_code == 422
    assert "Confirm that the purpose is still right" in response.content.decode()
    assert fresh(agent).next_review_due == due
    assert not Review.objects.exists()


def test_retiring_needs_a_reason_and_the_confirmation(
    client: Client, owner: Any, agent: Agent
) -> None:
    as_user(client, owner)
    retire = reverse("reviews:retire", args=[agent.slug])
    response = client.post(retire, {"reason": "  ", "from": "review"})
    assert response.status_code == 422
    html = response.content.decode()
    assert "Say why the agent is retired." in html
    assert "Tick the box to confirm the retirement." in html
    assert fresh(agent).status == "active"


def test_retiring_from_the_agent_page(client: Client, owner: Any, agent: Agent) -> None:
    as_user(client, owner)
    detail = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    assert reverse("reviews:retire", args=[agent.slug]) in detail
    assert page(agent) in detail  # the Review link
    response = client.post(
        reverse("reviews:retire", args=[agent.slug]),
        {"reason": "Replaced by v2.", "confirm": "on"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("agents:detail", args=[agent.slug])
    html = response.content.decode()
    assert "Refund bot is retired" in html
    assert fresh(agent).status == "retired"
    assert not Review.objects.exists()  # retired by hand, not by a review
    assert AuditEvent.objects.filter(verb="agent.retired").count() == 1
    # Read-only from now on: no edit, retire or review buttons.
    assert reverse("agents:edit", args=[agent.slug]) not in html
    assert reverse("reviews:retire", args=[agent.slug]) not in html


def test_retire_needs_csrf(owner: Any, agent: Agent) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(
        reverse("reviews:retire", args=[agent.slug]), {"reason": "x", "confirm": "on"}
    )
    assert response.status_code == 403
    assert fresh(agent).status == "active"


def test_a_retired_agent_is_read_only_everywhere(
    client: Client, owner: Any, admin_user: Any, agent: Agent
) -> None:
    g = grant(agent, "payments.refund")
    client.force_login(owner)
    client.post(reverse("reviews:retire", args=[agent.slug]), {"reason": "Gone.", "confirm": "on"})
    for user in (owner, admin_user):
        client.force_login(user)
        edit = client.post(reverse("agents:edit", args=[agent.slug]), {"name": "New"})
        assert edit.status_code == 403
        assert "Refund bot is retired" in edit.content.decode()
        token = client.post(
            reverse("agents:token-create", args=[agent.slug]), {"environment": "staging"}
        )
        assert token.status_code == 403
        policy = client.post(reverse("policy:delete", args=[agent.slug, "grant", g.pk]))
        assert policy.status_code == 403
        assert client.post(remove_url(agent, g)).status_code == 403
        review = client.get(page(agent))
        assert review.status_code == 200
        assert "read-only" in review.content.decode()
    assert Grant.objects.filter(pk=g.pk).exists()
    assert fresh(agent).name == "Refund bot"


def test_a_retired_agents_page_says_why_and_offers_nothing_it_refuses(
    client: Client, owner: Any, agent: Agent
) -> None:
    client.force_login(owner)
    client.post(
        reverse("reviews:retire", args=[agent.slug]), {"reason": "Replaced by v2.", "confirm": "on"}
    )
    html = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    assert "Retired " in html and ": Replaced by v2." in html
    assert "can no longer be undone here" in html
    assert reverse("rewind:plan", args=[agent.slug]) not in html
    assert ">Re-certifications</a>" in html and ">Re-certify</a>" not in html
    assert "none: retired" in html
    # Nor a due date where agents are listed (it read "Next re-certification 7 Mar 2027").
    listed = client.get(reverse("agents:list"), {"status": "retired"}).content.decode()
    assert "none: retired" in listed
    assert f"{agent.next_review_due:%-d %b %Y}" not in listed


def test_a_teammate_is_offered_the_record_not_a_re_certification(
    client: Client, teammate: Any, agent: Agent
) -> None:
    client.force_login(teammate)
    html = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    assert ">Re-certifications</a>" in html and ">Re-certify</a>" not in html


def test_the_review_list_shows_overdue_and_unowned_agents(
    client: Client, owner: Any, agent: Agent, other_agent: Agent
) -> None:
    Agent.objects.filter(pk=agent.pk).update(
        next_review_due=timezone.localdate() - 2 * DAY, unowned_since=timezone.now()
    )
    response = as_user(client, owner).get(reverse("reviews:list"))
    assert response.status_code == 200
    assert list(response.context["overdue"]) == [fresh(agent)]
    assert list(response.context["unowned"]) == [fresh(agent)]
    html = response.content.decode()
    assert "Email campaigner" not in html
    assert "1 overdue" in html


def test_taking_over_an_unowned_agent_in_the_edit_form_clears_the_flag(
    client: Client, admin_user: Any, owner: Any, teammate: Any, agent: Agent
) -> None:
    Agent.objects.filter(pk=agent.pk).update(unowned_since=timezone.now())
    owner.is_active = False
    owner.save()
    teammate.groups.add(*owner.groups.all())
    a = fresh(agent)
    data = {
        "name": a.name,
        "purpose": a.purpose,
        "owner": teammate.pk,
        "team": a.team_id,
        "environments": list(a.environments),
        "risk_tier": a.risk_tier,
        "review_interval_days": a.review_interval_days,
        "status": a.status,
    }
    response = as_user(client, admin_user).post(reverse("agents:edit", args=[a.slug]), data)
    assert response.status_code == 302, response.content
    taken = fresh(agent)
    assert (taken.owner, taken.unowned_since) == (teammate, None)


def test_a_retired_agents_edit_page_says_why_not_that_access_can_be_granted(
    client: Client, owner: Any, agent: Any
) -> None:
    """It said it was retired, then "The owner or an admin can grant access."."""
    from oversight.reviews.services import agent_retire
    from tests.conftest import SYSTEM

    agent_retire(actor=SYSTEM, agent=agent, reason="replaced")
    client.force_login(owner)
    response = client.get(reverse("agents:edit", args=[agent.slug]))
    page = response.content.decode()
    assert response.status_code == 403
    assert f"{agent.name} is retired: it is kept read-only, with its history." in page
    assert "can grant access" not in page
    # A role's refusal says who gives roles: there is no owner of the audit log to ask.
    other = client.get(reverse("audit:list"))
    assert other.status_code == 403
    assert "The audit log is for admins and auditors." in other.content.decode()
    assert "An admin gives people their roles." in other.content.decode()
    assert "can grant" not in other.content.decode()


def test_a_refusal_access_to_the_agent_would_lift_says_who_grants_it(
    client: Client, teammate: Any, agent: Any
) -> None:
    client.force_login(teammate)
    response = client.get(reverse("agents:edit", args=[agent.slug]))
    assert response.status_code == 403
    page = response.content.decode()
    assert "You may view this agent but not change it." in page
    assert "The agent&#x27;s owner or an admin can grant you access to it." in page
