"""The analysis of an incident: break point, ranked causes and blast radius, on traffic
decided by the pipeline around changes made through the services."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.agents.services import agent_update, token_create
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from oversight.incidents.analysis.blast import EFFECTIVE
from oversight.incidents.analysis.report import analyse
from oversight.incidents.models import Incident, TriggerKind
from oversight.incidents.services import incident_open
from oversight.policy.models import Grant
from oversight.policy.services import policy_object_create, policy_object_delete
from tests.conftest import SYSTEM
from tests.gateway.helpers import forbid_many_charges, grant_refunds
from tests.incidents.helpers import bulk_refund, mix, place, small_refund, traffic

pytestmark = pytest.mark.django_db

BUCKET = 10
LOOKBACK = 60  # buckets: ten minutes


def _open(agent: Agent, at: dt.datetime) -> Incident:
    incident, _ = incident_open(
        actor=SYSTEM,
        kind=TriggerKind.MANUAL,
        target=("agents.agent", str(agent.pk)),
        summary="refunds look wrong",
        agent=agent,
    )
    Incident.objects.filter(pk=incident.pk).update(opened_at=at)
    incident.refresh_from_db()
    return incident


@pytest.fixture
def loosened(agent: Agent, owner: Any, admin_user: Any) -> dict[str, Any]:
    """Refunds of several charges at once were forbidden; the owner deletes that rule.
    Right after, an admin makes two unrelated changes: a grant for an action the agent
    never asks for, and a new purpose."""
    grant_refunds(agent)
    rule = forbid_many_charges(agent)
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    body = mix((80, small_refund), (20, bulk_refund))
    before = traffic(token, body, 240, seed=1)
    policy_object_delete(actor=Actor.for_user(owner), obj=rule)
    t0 = AuditEvent.objects.filter(verb=verbs.RULE_DELETED).latest("seq").created_at
    admin = Actor.for_user(admin_user)
    policy_object_create(
        actor=admin, obj=Grant(agent=agent, action="payments.dispute", resource="stripe:*")
    )
    agent_update(actor=admin, agent=agent, purpose="Issues refunds; now says so at length.")
    after = traffic(token, body, 120, seed=2)
    place(before, t0 - dt.timedelta(seconds=400), t0)
    place(after, t0, t0 + dt.timedelta(seconds=200))
    opened = t0 + dt.timedelta(seconds=200)
    return {"t0": t0, "incident": _open(agent, opened), "after": after, "opened": opened}


@override_settings(INCIDENT_BUCKET_SECONDS=BUCKET, INCIDENT_LOOKBACK_BUCKETS=LOOKBACK)
def test_the_deleted_rule_is_named_first_with_its_evidence(
    loosened: dict[str, Any], owner: Any
) -> None:
    report = analyse(loosened["incident"], now=loosened["opened"])

    brk = report["break"]
    assert brk["clear"]
    found = dt.datetime.fromisoformat(brk["at"])
    assert abs((found - loosened["t0"]).total_seconds()) <= BUCKET
    assert brk["what_changed"][0]["what"].startswith("payments.refund ")

    first, *others = report["causes"]
    assert report["likely_cause"] == first
    assert "rule deleted: one charge at a time" in first["summary"]
    assert first["actor"] == owner.get_username()
    assert first["touches"] == ["payments.refund"]
    assert first["scope_fit"] > 0.9
    moved = {row["what"]: row for row in first["evidence"]}
    assert (
        moved["payments.refund denied"]["share_after"]
        < moved["payments.refund denied"]["share_before"]
    )
    # The unrelated changes are there, ranked below it. (The policy's own setup, made a
    # second before it in real time, falls in the same bucket here and ties with it: the
    # series cannot tell changes of one bucket and one action apart.)
    unrelated = [
        c for c in others if "payments.dispute" in c["summary"] or "purpose" in c["summary"]
    ]
    assert len(unrelated) == 2
    assert all(c["score"] < first["score"] - 0.2 for c in unrelated)


@override_settings(INCIDENT_BUCKET_SECONDS=BUCKET, INCIDENT_LOOKBACK_BUCKETS=LOOKBACK)
def test_the_blast_radius_is_what_was_recorded_from_the_break_on(
    loosened: dict[str, Any],
) -> None:
    report = analyse(loosened["incident"], now=loosened["opened"])
    blast = report["blast_radius"]
    since = dt.datetime.fromisoformat(blast["since"])
    recorded = Action.objects.filter(
        agent=loosened["incident"].agent,
        created_at__gte=since,
        created_at__lt=loosened["opened"],
        compensates__isnull=True,
    )
    effective = recorded.filter(status__in=EFFECTIVE)
    assert blast["actions"] == recorded.count()
    assert blast["took_effect"] == effective.count()
    assert blast["resources"] == effective.values("resource").distinct().count()
    total = sum(a.params["amount"] for a in effective)
    assert blast["amounts"] == [{"action": "payments.refund", "currency": "", "sum": str(total)}]
    assert blast["reversibility"] == {"unknown": effective.count()}
    assert report["rewind"][0]["url"].startswith("/agents/refund-bot/rewind/?since=")
    assert report["behaviour_diff"][0]["url"].startswith("/agents/refund-bot/behaviour/?left=")


@override_settings(INCIDENT_BUCKET_SECONDS=BUCKET, INCIDENT_LOOKBACK_BUCKETS=LOOKBACK)
def test_the_reports_rewind_link_plans_the_blast_radius_window(
    loosened: dict[str, Any], client: Client
) -> None:
    """Its times were written into the link as they are: the "+" of "+00:00" arrived as a
    space, and the plan page said the time was neither a duration nor a date."""
    report = analyse(loosened["incident"], now=loosened["opened"])
    client.force_login(loosened["incident"].agent.owner)
    response = client.get(report["rewind"][0]["url"])
    plan = response.context["plan"]
    assert plan is not None, response.context["form"].errors
    assert plan["since"] == dt.datetime.fromisoformat(report["blast_radius"]["since"])


@override_settings(INCIDENT_BUCKET_SECONDS=BUCKET, INCIDENT_LOOKBACK_BUCKETS=LOOKBACK)
def test_the_timeline_has_the_changes_the_break_and_notable_actions(
    loosened: dict[str, Any],
) -> None:
    report = analyse(loosened["incident"], now=loosened["opened"])
    kinds = [entry["kind"] for entry in report["timeline"]]
    assert "change" in kinds and "break" in kinds
    notable = [e for e in report["timeline"] if e["kind"] == "action"]
    assert notable and all(e["what"].startswith("large amount") for e in notable)
    assert all(Action.objects.filter(pk=e["action_id"]).exists() for e in notable)
    assert len(report["series"]) == LOOKBACK
    assert sum(row["actions"] for row in report["series"]) == 240 + 120
    assert [e["at"] for e in report["timeline"]] == sorted(e["at"] for e in report["timeline"])


@override_settings(INCIDENT_BUCKET_SECONDS=BUCKET, INCIDENT_LOOKBACK_BUCKETS=LOOKBACK)
def test_steady_traffic_has_no_clear_break(agent: Agent) -> None:
    grant_refunds(agent)
    forbid_many_charges(agent)
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    actions = traffic(token, mix((80, small_refund), (20, bulk_refund)), 300, seed=3)
    now = Action.objects.latest("created_at").created_at + dt.timedelta(seconds=1)
    place(actions, now - dt.timedelta(seconds=600), now)
    report = analyse(_open(agent, now), now=now)
    assert report["break"] is not None
    assert not report["break"]["clear"]
    assert report["likely_cause"] is None
    # A weak break is none to speak of: causes are told from the opening, with no strength.
    assert report["causes"]
    for cause in report["causes"]:
        assert not any("break" in why for why in cause["why"]), cause["why"]
        assert (
            "before the incident opened" in cause["why"][0] or "as the incident" in cause["why"][0]
        )


def test_the_teams_and_everyones_changes_are_candidates_and_other_teams_are_not(
    agent: Agent, other_team: Any, admin_user: Any
) -> None:
    from oversight.incidents.analysis.changes import change_events, group_changes
    from oversight.killswitch.selectors import Target
    from oversight.killswitch.services import killswitch_engage, killswitch_release
    from tests.gateway.helpers import limit_create

    start = timezone.now()
    admin = Actor.for_user(admin_user)
    limit_create(name="team refunds", team=agent.team, max_count=100)
    limit_create(name="everyone's refunds", max_count=1000)
    limit_create(name="other team's refunds", team=other_team, max_count=5)
    from oversight.notifications.services import team_channels_update

    for team in (agent.team, other_team):
        team_channels_update(
            actor=admin, team=team, email_enabled=False, webhook_url=f"https://{team.slug}.example"
        )
    for target in (Target(scope="team", team=other_team), Target(scope="global")):
        killswitch_engage(actor=admin, target=target, reason="drill")
        killswitch_release(actor=admin, target=target, reason="drill over")
    events = change_events(
        agent_ids=[agent.pk], team_ids=[agent.team_id], start=start, end=timezone.now()
    )
    found = [c.summary for c in group_changes(events)]
    assert any("team refunds" in s for s in found)
    assert any("everyone's refunds" in s for s in found)
    assert not any("other team" in s for s in found)
    assert sum("kill switch released" in s for s in found) == 1  # everyone's, not theirs
    assert [s for s in found if "notification channels" in s] == [
        "team settings changed: notification channels of payments"
    ]


def test_too_little_traffic_to_split_still_lists_the_changes(agent: Agent) -> None:
    """Everything happened in the last minute: no break can be found, and the changes of
    the window are listed, none called likely."""
    grant_refunds(agent)
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    traffic(token, small_refund, 5, seed=4)
    report = analyse(_open(agent, timezone.now()))
    assert report["break"] is None and report["likely_cause"] is None
    assert any("grant created: payments.refund" in c["summary"] for c in report["causes"])
    assert report["blast_radius"]["actions"] == 5


def test_the_timeline_shows_approvals_and_responses(agent: Agent, reviewer: Any) -> None:
    from oversight.agents.services import agent_access_grant
    from oversight.approvals.services import approval_vote
    from oversight.killswitch.selectors import Target
    from oversight.killswitch.services import killswitch_engage
    from tests.gateway.helpers import decide, hold_large_refunds, refund

    grant_refunds(agent)
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    hold_large_refunds(agent)
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    held = decide(token, refund(900))
    approval_vote(user=reviewer, action_id=held.pk, vote="approve", comment="fine")
    killswitch_engage(actor=SYSTEM, target=Target(scope="agent", agent=agent), reason="drill")
    report = analyse(_open(agent, timezone.now()))
    kinds = {(e["kind"], e["what"].split(":")[0], e.get("verb")) for e in report["timeline"]}
    assert ("approval", "Vote", "action.voted") in kinds
    assert ("response", "Kill switch engaged", "killswitch.engaged") in kinds


def test_everyones_incident_links_the_agents_that_acted_busiest_first(
    agent: Agent, team: Any, owner: Any
) -> None:
    """Not the first agents made: an idle one (retired, here) is not offered a rewind or
    a behaviour diff; the busiest agent comes first."""
    from oversight.agents.services import agent_create
    from oversight.reviews.services import agent_retire

    def made(name: str) -> Agent:
        return agent_create(
            actor=SYSTEM,
            name=name,
            slug=name.lower().replace(" ", "-"),
            purpose="Refunds too.",
            owner=owner,
            team=team,
            environments=["production"],
            risk_tier="high",
        )

    idle, busy = made("Idle bot"), made("Busy bot")
    agent_retire(actor=SYSTEM, agent=idle, reason="replaced")
    for one, count in ((agent, 2), (busy, 5)):
        grant_refunds(one)
        traffic(
            token_create(actor=SYSTEM, agent=one, environment="production")[0],
            small_refund,
            count,
            seed=1,
        )
    incident, _ = incident_open(
        actor=SYSTEM, kind=TriggerKind.MANUAL, target=("global", ""), summary="odd"
    )
    report = analyse(incident)
    assert [link["name"] for link in report["rewind"]] == ["Busy bot", "Refund bot"]
    assert "idle-bot" in report["agents"]
