"""The releases pages: list, one release, compare, and one-click rollback."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.agents.services import token_create
from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from oversight.policy.models import Rule
from oversight.policy.services import policy_object_create, policy_object_update
from oversight.releases.models import Release
from tests.conftest import SYSTEM
from tests.gateway.helpers import REFUND, AgentApi, decide, grant_refunds, refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def forbid(agent: Any) -> Rule:
    """v2: refunds granted; v3: refunds above 100 forbidden; v4: above 1000 only."""
    grant_refunds(agent)
    rule = policy_object_create(
        actor=SYSTEM,
        obj=Rule(
            agent=agent,
            name="no big",
            effect="forbid",
            action=REFUND,
            condition="params.amount > 100",
        ),
    )
    return policy_object_update(actor=SYSTEM, obj=rule, condition="params.amount > 1000")


def _rollback(agent: Any, version: int) -> str:
    return reverse("releases:rollback", args=[agent.slug, version])


def test_the_pages_show_the_releases(
    client: Client, teammate: Any, agent: Any, forbid: Rule
) -> None:
    client.force_login(teammate)
    detail = client.get(reverse("agents:detail", args=[agent.slug])).content.decode()
    assert reverse("releases:list", args=[agent.slug]) in detail
    listing = client.get(reverse("releases:list", args=[agent.slug])).content.decode()
    for version in (1, 2, 3, 4):
        assert f"v{version}</a>" in listing
    assert agent.releases.get(version=4).digest[:12] in listing
    assert "stable" in listing
    page = client.get(reverse("releases:detail", args=[agent.slug, 3])).content.decode()
    assert "params.amount &gt; 100" in page
    assert "Roll back" not in page  # a teammate may look, not change
    compare = client.get(reverse("releases:compare", args=[agent.slug]) + "?old=1&new=4")
    text = compare.content.decode()
    assert "Added in v4" in text and "payments.refund" in text and "no big" in text
    changed = client.get(reverse("releases:compare", args=[agent.slug]) + "?old=3&new=4")
    assert "params.amount &gt; 1000" in changed.content.decode()
    assert "Changed: no big" in changed.content.decode()
    assert "condition (changed)" in changed.content.decode()


def test_rollback_restores_the_policy_and_the_next_decision_uses_it(
    client: Client, owner: Any, agent: Any, forbid: Rule
) -> None:
    token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    assert decide(token, refund(500)).status == "allowed"  # under v4, only > 1000 forbidden
    client.force_login(owner)
    version_before = agent.__class__.objects.get(pk=agent.pk).policy_version
    response = client.post(_rollback(agent, 3))
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.stable_version == 5
    new = agent.stable_release
    assert new.notes == "rollback to v3" and new.parent.version == 4
    assert new.digest == Release.objects.get(agent=agent, version=3).digest
    assert agent.policy_version > version_before
    assert Rule.objects.get(agent=agent).condition == "params.amount > 100"
    action = decide(token, refund(500))
    assert action.status == "denied" and action.release_version == 5
    answer = AgentApi(client, raw).decide(refund(50))
    assert answer["release"] == 5
    assert AgentApi(client, raw).get(f"/actions/{answer['id']}").json()["release"] == 5
    event = AuditEvent.objects.get(verb="release.rolled_back")
    assert event.after["version"] == 5 and event.before == {"rolled_back_to": 3}


def test_the_list_says_which_releases_were_rolled_back(
    client: Client, owner: Any, agent: Any, forbid: Rule
) -> None:
    """A release a rollback replaced says so, and by which; one whose rollout was rolled
    back says that; the others say nothing."""
    from oversight.releases.rollouts import rollout_roll_back, rollout_start

    client.force_login(owner)
    client.post(_rollback(agent, 3))  # v4 replaced by v5, with v3's content
    rollout = rollout_start(actor=SYSTEM, release=agent.releases.get(version=2), stage="staging")
    rollout_roll_back(actor=SYSTEM, rollout=rollout, why="wrong rule")
    listing = client.get(reverse("releases:list", args=[agent.slug])).content.decode()
    rows = {
        version: listing.split(f">v{version}</a>", 1)[1].split("</tr>", 1)[0]
        for version in range(1, 6)
    }
    assert "rolled back</span>" in rows[4] and "by v5, a rollback to v3" in rows[4]
    assert reverse("releases:detail", args=[agent.slug, 5]) in rows[4]
    assert "rollout rolled back" in rows[2]
    assert "stable" in rows[5]
    assert all("rolled back" not in rows[v] for v in (1, 3, 5))
    # Each one's own page says it too.
    for version, words in ((4, "by v5, a rollback to v3"), (2, "rollout rolled back")):
        page = client.get(reverse("releases:detail", args=[agent.slug, version])).content.decode()
        assert 'id="release-fate"' in page and words in page, version
    page = client.get(reverse("releases:detail", args=[agent.slug, 3])).content.decode()
    assert 'id="release-fate"' not in page


def test_rollback_to_what_is_in_force_makes_nothing(client: Client, owner: Any, agent: Any) -> None:
    grant_refunds(agent)
    client.force_login(owner)
    client.post(_rollback(agent, 2))
    assert agent.releases.count() == 2


@pytest.mark.parametrize(("who", "status"), [("teammate", 403), ("outsider", 404)])
def test_only_who_may_change_the_agent_rolls_back(
    client: Client, request: pytest.FixtureRequest, agent: Any, forbid: Rule, who: str, status: int
) -> None:
    client.force_login(request.getfixturevalue(who))
    assert client.post(_rollback(agent, 1)).status_code == status
    agent.refresh_from_db()
    assert agent.stable_version == 4 and Rule.objects.filter(agent=agent).exists()


def test_rollback_needs_the_csrf_token(owner: Any, agent: Any, forbid: Rule) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(_rollback(agent, 1)).status_code == 403
    agent.refresh_from_db()
    assert agent.stable_version == 4
    assert not Action.objects.exists()


def test_a_releases_grants_and_rules_show_undo_and_who_approves_readably(
    client: Client, teammate: Any, agent: Any
) -> None:
    from tests.gateway.helpers import grant_reversible_refunds, hold_large_refunds

    grant_reversible_refunds(agent, {"amount": "params.amount"})  # v2, v3
    hold_large_refunds(agent, approvals=2, expires_in_seconds=900, edits_allowed=False)
    newest = agent.releases.order_by("-version").first().version
    client.force_login(teammate)
    page = client.get(reverse("releases:detail", args=[agent.slug, newest])).content.decode()
    assert "Reversible (with a compensation)" in page
    assert "payments.charge with params" in page and "within 1 hour" in page
    assert "hold time:</span> 15 minutes" in page  # a duration: no "(seconds)"
    assert "approvals:</span> 2" in page and "edits allowed:</span> no" in page
    assert "approvers:</span> Anyone with approve access on the agent" in page
    assert "named approvers:</span> —" in page
    compare = client.get(
        reverse("releases:compare", args=[agent.slug]) + f"?old=1&new={newest}"
    ).content.decode()
    assert "approver_role:" not in compare and "edits_allowed: True" not in compare
    assert '<dt>edits allowed</dt><dd class="mono">no</dd>' in compare
    assert '<dt>hold time</dt><dd class="mono">15 minutes</dd>' in compare


def test_the_list_marks_a_release_awaiting_approval_or_being_rolled_out(
    client: Client, owner: Any, admin_user: Any, agent: Any
) -> None:
    """A release awaiting its rollout's approval had no mark on the list (only a running
    candidate had its stage); now each says where its rollout stands."""
    from oversight.accounts.services import team_change_control_update
    from oversight.audit.actors import Actor
    from oversight.releases import rollouts
    from oversight.releases.models import Rollout

    grant_refunds(agent)  # v2, stable
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="high")
    policy_object_create(
        actor=Actor.for_user(owner),
        obj=Rule(agent=agent, name="no", effect="forbid", action=REFUND),
    )
    client.force_login(owner)
    listing = client.get(reverse("releases:list", args=[agent.slug])).content.decode()
    assert '<span class="pill status-paused">awaiting approval</span>' in listing
    rollouts.rollout_approve(actor=Actor.for_user(admin_user), rollout=Rollout.objects.get())
    listing = client.get(reverse("releases:list", args=[agent.slug])).content.decode()
    assert '<span class="pill status-paused">running: staging</span>' in listing


def test_a_grants_expiry_reads_as_the_policy_page_shows_it(
    client: Client, owner: Any, agent: Any
) -> None:
    """The release and compare pages showed "2030-01-01T00:00:00+00:00"."""
    import datetime as dt

    from django.utils import timezone

    from oversight.policy.models import Grant

    expires = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    policy_object_create(
        actor=SYSTEM, obj=Grant(agent=agent, action="email.send", expires_at=expires)
    )
    shown = timezone.localtime(expires).strftime("%-d %b %Y %H:%M")
    client.force_login(owner)
    version = agent.releases.order_by("-version").first().version
    page = client.get(reverse("releases:detail", args=[agent.slug, version])).content.decode()
    compare = client.get(
        reverse("releases:compare", args=[agent.slug]) + f"?old={version - 1}&new={version}"
    ).content.decode()
    for text in (page, compare):
        assert shown in text and "2030-01-01T00:00:00" not in text
