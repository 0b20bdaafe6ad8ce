"""Who may approve: team reviewers, approver sets on hold rules, the check at rule save,
and one eligibility function that the vote, the cards and the notifications all read."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from oversight.accounts import roles
from oversight.accounts.services import team_reviewer_add, team_reviewer_remove
from oversight.agents.models import Agent, AgentToken
from oversight.agents.permissions import user_has_agent_perm
from oversight.agents.services import agent_access_grant, agent_create
from oversight.approvals.eligibility import (
    eligible_approvers,
    rule_eligible_approvers,
    rule_unsatisfiable,
)
from oversight.approvals.selectors import approval_queue
from oversight.approvals.services import approval_vote
from oversight.audit.models import AuditEvent
from oversight.notifications.selectors import action_reviewers
from oversight.policy.models import Rule
from oversight.policy.services import policy_object_create, policy_object_update
from tests.conftest import SYSTEM, make_user
from tests.gateway.helpers import REFUND, decide, grant_refunds, refund

pytestmark = pytest.mark.django_db


def _names(users: Any) -> list[str]:
    return [u.username for u in users]


def _hold(agent: Agent, people: Any = None, **fields: Any) -> Rule:
    rule = Rule(
        agent=agent,
        name=fields.pop("name", "large refunds"),
        effect="hold",
        action=REFUND,
        condition="params.amount > 500",
        **fields,
    )
    extra = {"approver_people": people} if people is not None else {}
    return policy_object_create(actor=SYSTEM, obj=rule, **extra)


@pytest.fixture
def vic(django_user_model: Any) -> Any:
    return make_user(django_user_model, "vic", roles.REVIEWER)


@pytest.fixture
def reviewers(agent: Agent, reviewer: Any, vic: Any) -> list[Any]:
    """rita and vic review the team's agents."""
    for person in (reviewer, vic):
        team_reviewer_add(actor=SYSTEM, team=agent.team, user=person)
    agent.team.refresh_from_db()
    return [reviewer, vic]


# --- team reviewers ---------------------------------------------------------------------


def test_team_reviewers_may_view_and_approve_every_agent_of_the_team(
    agent: Agent, team: Any, owner: Any, reviewers: list[Any]
) -> None:
    later = agent_create(
        actor=SYSTEM, name="Invoice bot", purpose="Invoices.", owner=owner, team=team
    )
    for person in reviewers:
        for each in (agent, later):
            assert user_has_agent_perm(person, "view_agent", each)
            assert user_has_agent_perm(person, "approve_agent", each)
    assert AuditEvent.objects.filter(verb="team.reviewer_added").count() == 2


def test_a_removed_reviewer_loses_access(agent: Agent, reviewers: list[Any]) -> None:
    rita = reviewers[0]
    assert team_reviewer_remove(actor=SYSTEM, team=agent.team, user=rita)
    assert not user_has_agent_perm(rita, "approve_agent", agent)
    assert not team_reviewer_remove(actor=SYSTEM, team=agent.team, user=rita)
    assert AuditEvent.objects.filter(verb="team.reviewer_removed").count() == 1


def test_team_reviewers_are_told_of_held_actions(agent: Agent, reviewers: list[Any]) -> None:
    assert _names(action_reviewers(agent=agent)) == ["rita", "vic"]


# --- the check at save -----------------------------------------------------------------


def test_a_hold_rule_nobody_can_approve_is_refused_naming_the_rule(agent: Agent) -> None:
    grant_refunds(agent)
    with pytest.raises(ValidationError) as refused:
        _hold(agent)
    assert refused.value.messages == [
        "Rule “large refunds” needs 1 approval from anyone with approve access, but only 0 "
        "people are eligible (nobody). Add team reviewers or grant reviewer access first."
    ]
    assert not Rule.objects.exists()


def test_a_two_person_rule_with_one_eligible_non_owner_is_refused(
    agent: Agent, owner: Any, reviewer: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=owner, level="reviewer")
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    with pytest.raises(ValidationError, match=r"only 1 person is eligible \(rita\)"):
        _hold(agent, approvals=2, separation_of_duties=True)
    rule = _hold(agent, approvals=2)  # the owner may approve: alice and rita
    assert _names(rule_eligible_approvers(rule)) == ["alice", "rita"]


def test_the_team_reviewers_set_admits_only_them(
    agent: Agent, reviewers: list[Any], django_user_model: Any
) -> None:
    other = make_user(django_user_model, "otto", roles.REVIEWER)
    agent_access_grant(actor=SYSTEM, agent=agent, user=other, level="reviewer")
    rule = _hold(agent, approvers="team_reviewers", approvals=2)
    assert _names(rule_eligible_approvers(rule)) == ["rita", "vic"]
    with pytest.raises(ValidationError, match="from the reviewers of team payments"):
        policy_object_update(actor=SYSTEM, obj=rule, approvals=3)


def test_named_people_must_have_access(agent: Agent, reviewer: Any, vic: Any) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    with pytest.raises(ValidationError, match=r"from rita, vic, but only 1 person"):
        _hold(agent, people=[reviewer, vic], approvers="people", approvals=2)
    rule = _hold(agent, people=[reviewer, vic], approvers="people")
    assert _names(rule_eligible_approvers(rule)) == ["rita"]


def test_a_role_of_admins_admits_admins_without_a_grant(agent: Agent, admin_user: Any) -> None:
    rule = _hold(agent, approvers="role", approver_role="admin")
    assert _names(rule_eligible_approvers(rule)) == ["ada"]


def test_a_rule_made_unsatisfiable_later_says_so(agent: Agent, reviewers: list[Any]) -> None:
    rule = _hold(agent, approvers="team_reviewers", approvals=2)
    team_reviewer_remove(actor=SYSTEM, team=agent.team, user=reviewers[1])
    assert "only 1 person is eligible (rita)" in rule_unsatisfiable(rule)


# --- votes ------------------------------------------------------------------------------


@pytest.fixture
def token(agent: Agent) -> AgentToken:
    from oversight.agents.services import token_create

    return token_create(actor=SYSTEM, agent=agent, environment="production")[0]


def test_someone_outside_the_approver_set_is_refused_saying_why(
    agent: Agent, token: AgentToken, reviewers: list[Any], django_user_model: Any
) -> None:
    otto = make_user(django_user_model, "otto", roles.REVIEWER)
    agent_access_grant(actor=SYSTEM, agent=agent, user=otto, level="reviewer")
    grant_refunds(agent)
    _hold(agent, approvers="team_reviewers")
    action = decide(token, refund(900))
    with pytest.raises(PermissionDenied) as refused:
        approval_vote(user=otto, action_id=action.pk, vote="approve")
    assert str(refused.value) == (
        "This action is for the reviewers of team payments to decide; you are not one of them."
    )
    assert _names(eligible_approvers(action)) == ["rita", "vic"]
    approval_vote(user=reviewers[0], action_id=action.pk, vote="deny", comment="no")
    action.refresh_from_db()
    assert eligible_approvers(action) == []  # decided: nobody any more


def test_people_who_voted_are_no_longer_eligible(
    agent: Agent, token: AgentToken, reviewers: list[Any]
) -> None:
    grant_refunds(agent)
    _hold(agent, approvals=2)
    action = decide(token, refund(900))
    approval_vote(user=reviewers[0], action_id=action.pk, vote="approve")
    action.refresh_from_db()
    assert _names(eligible_approvers(action)) == ["vic"]


def test_the_action_keeps_its_rules_approvers_as_decided(
    agent: Agent, token: AgentToken, reviewers: list[Any], vic: Any
) -> None:
    grant_refunds(agent)
    rule = _hold(agent, people=[vic], approvers="people")
    action = decide(token, refund(900))
    assert action.approver_sets == [
        {"rule": "large refunds", "kind": "people", "role": "", "people": [vic.pk]}
    ]
    policy_object_update(actor=SYSTEM, obj=rule, approvers="team_reviewers", approver_people=[])
    assert _names(eligible_approvers(action)) == ["vic"]  # the snapshot decides


# --- pages ------------------------------------------------------------------------------


def test_saving_a_hold_rule_says_who_can_approve(
    client: Client, agent: Agent, owner: Any, reviewers: list[Any]
) -> None:
    client.force_login(owner)
    data = {
        "rule-name": "two people",
        "rule-effect": "hold",
        "rule-action": "payments.refund",
        "rule-resource": "*",
        "rule-condition": "",
        "rule-approvals": "2",
        "rule-expires_in_seconds": "900",
        "rule-separation_of_duties": "on",
        "rule-approvers": "team_reviewers",
    }
    response = client.post(reverse("policy:add", args=[agent.slug, "rule"]), data, follow=True)
    page = response.content.decode()
    assert "Who can approve what it holds (2 approvals needed): rita, vic." in page
    response = client.post(
        reverse("policy:add", args=[agent.slug, "rule"]),
        {**data, "rule-name": "three people", "rule-approvals": "3"},
    )
    assert response.status_code == 422
    assert "Rule “three people” needs 3 approvals from the reviewers of team payments" in (
        response.content.decode()
    )


def test_team_reviewers_are_managed_on_the_team_page_by_owners_and_admins(
    client: Client, agent: Agent, owner: Any, teammate: Any, reviewer: Any, outsider: Any
) -> None:
    url = reverse("team-reviewer-add", args=[agent.team.slug])
    client.force_login(teammate)  # a member without the owner role
    assert client.post(url, {"user": reviewer.pk}, HTTP_HX_REQUEST="true").status_code == 403
    client.force_login(outsider)  # an owner of another team
    assert client.post(url, {"user": reviewer.pk}, HTTP_HX_REQUEST="true").status_code == 404
    # A reviewer granted one of its agents sees the team's page: told no, not "no such team".
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    client.force_login(reviewer)
    assert client.get(reverse("team", args=[agent.team.slug])).status_code == 200
    assert client.post(url, {"user": reviewer.pk}, HTTP_HX_REQUEST="true").status_code == 403
    client.force_login(owner)
    response = client.post(url, {"user": reviewer.pk}, HTTP_HX_REQUEST="true")
    assert "rita now reviews the held actions of payments" in response.content.decode()
    agent.team.refresh_from_db()
    assert _names(agent.team.reviewers) == ["rita"]
    remove = reverse("team-reviewer-remove", args=[agent.team.slug, reviewer.pk])
    client.post(remove, HTTP_HX_REQUEST="true")
    assert _names(agent.team.reviewers) == []


def test_the_team_page_names_the_rules_nobody_can_satisfy_on_a_fresh_load(
    client: Client, agent: Agent, owner: Any, teammate: Any, reviewers: list[Any]
) -> None:
    _hold(agent, name="two people", approvers="team_reviewers", approvals=2)
    team_reviewer_remove(actor=SYSTEM, team=agent.team, user=reviewers[1])  # vic leaves
    page = reverse("team", args=[agent.team.slug])

    client.force_login(owner)  # who can add reviewers is told on the page itself
    body = client.get(page).content.decode()
    assert "Refund bot: Rule “two people” needs 2 approvals" in body
    assert "only 1 person is eligible (rita)" in body

    client.force_login(teammate)  # a member who cannot change the reviewers is not
    assert "approvers-warning" not in client.get(page).content.decode()

    team_reviewer_add(actor=SYSTEM, team=agent.team, user=reviewers[1])
    client.force_login(owner)
    assert "approvers-warning" not in client.get(page).content.decode()


def test_policy_apply_refuses_a_rule_nobody_can_approve_and_changes_nothing(
    django_user_model: Any,
) -> None:
    make_user(django_user_model, "alice")
    make_user(django_user_model, "rita")
    text = """
teams:
  - name: platform
    reviewers: [rita]
agents:
  - slug: deploy-bot
    name: Deploy bot
    owner: alice
    team: platform
    purpose: Deploys
    grants: [{action: "deploy.release"}]
    rules:
      - {name: two people, effect: hold, action: "deploy.release", approvals: 2,
         separation_of_duties: true, approvers: team_reviewers}
"""
    with pytest.raises(CommandError) as refused:
        call_command("policy_apply", "-", stdin=StringIO(text), stdout=StringIO())
    assert str(refused.value) == (
        "standard input: agents[0].rules[0]: Rule “two people” needs 2 approvals from the "
        "reviewers of team platform, not the owner, but only 1 person is eligible (rita). "
        "Add team reviewers or grant reviewer access first. Nothing was changed."
    )
    assert not Agent.objects.exists() and not AuditEvent.objects.exists()


def test_the_queue_lists_for_team_reviewers(
    agent: Agent, token: AgentToken, reviewers: list[Any]
) -> None:
    grant_refunds(agent)
    _hold(agent, approvers="team_reviewers")
    action = decide(token, refund(900))
    assert [a.pk for a in approval_queue(user=reviewers[1])] == [action.pk]
