"""Reads for reviewers: the queue, one held action in full, an action's whole story."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from django.db.models import (
    Exists,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    prefetch_related_objects,
)
from django.db.models.functions import Lower
from django.http import Http404

from oversight.accounts.models import Team
from oversight.agents.constants import APPROVE, VIEW, RiskTier
from oversight.agents.models import Agent
from oversight.agents.selectors import agents_with_perm
from oversight.approvals.eligibility import Eligibility, action_case, approvers_for
from oversight.approvals.models import ApprovalVote, Vote
from oversight.audit.models import AuditEvent
from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.lib.humanize import pretty_json
from oversight.lib.paging import Page, page_of

RECENT = 5
# Items a page of the queue shows, as cards or as the compact list's rows: a person
# decides from the top, and the filters find the rest.
PAGE_SIZE = 25
LIST_PAGE_SIZE = 50

_VOTES = Prefetch("votes", queryset=ApprovalVote.objects.select_related("voter"))


@dataclass(frozen=True)
class QueueFilters:
    """The queue's filters: an agent's slug, a team's slug, a risk tier ("" for any)."""

    agent: str = ""
    team: str = ""
    risk: str = ""

    def __bool__(self) -> bool:
        return bool(self.agent or self.team or self.risk)


def _held_for(user: Any) -> QuerySet[Action]:
    """Held actions of the agents this person may decide that she has not voted on: once
    she has, she has nothing more to decide (an edit that supersedes her approval brings
    the action back)."""
    voted = ApprovalVote.objects.filter(action=OuterRef("pk"), voter=user, superseded=False)
    return Action.objects.filter(
        status=ActionStatus.PENDING, agent__in=agents_with_perm(user=user, perm=APPROVE)
    ).exclude(Exists(voted))


def approval_queue(*, user: Any, filters: QueueFilters | None = None) -> QuerySet[Action]:
    """Held actions this person may decide, most urgent first; lazy, so that a page can
    count it and take one slice."""
    f = filters or QueueFilters()
    actions = _held_for(user)
    if f.agent:
        actions = actions.filter(agent__slug=f.agent)
    if f.team:
        actions = actions.filter(agent__team__slug=f.team)
    if f.risk:
        actions = actions.filter(agent__risk_tier=f.risk)
    return actions.select_related("agent__owner", "agent__team").order_by(
        "expires_at", "created_at"
    )


def approval_queue_page(
    *,
    user: Any,
    filters: QueueFilters | None = None,
    number: int = 1,
    size: int = PAGE_SIZE,
    detail: bool = True,
) -> Page[dict[str, Any]]:
    """A fixed number of queries however long the queue: a count, the page, its votes
    and its agents' recent actions. Each item is a queue_item_context (see
    queue_item_contexts for ``detail``)."""
    page = page_of(approval_queue(user=user, filters=filters), number=number, size=size)
    return replace(page, items=queue_item_contexts(list(page.items), detail=detail))


def _recent_by_agent(agent_ids: set[int]) -> dict[int, list[Action]]:
    """Each agent's newest RECENT + 1 actions (one more, for the item's own), in two
    queries that read only those rows through the index (agent, -created_at), however
    long the agents' histories: the creation time of each agent's (RECENT + 1)th newest
    action, then the actions at or after it."""
    if not agent_ids:
        return {}
    nth_newest = Subquery(
        Action.objects.filter(agent_id=OuterRef("pk"))
        .order_by("-created_at")
        .values("created_at")[RECENT : RECENT + 1]
    )
    cutoffs = Agent.objects.filter(pk__in=agent_ids).annotate(since=nth_newest)
    newest = Q()
    for agent_id, since in cutoffs.values_list("pk", "since"):
        newest |= Q(agent_id=agent_id, created_at__gte=since) if since else Q(agent_id=agent_id)
    if not newest:  # the agents are gone
        return {}
    rows = (
        Action.objects.filter(newest)
        .only("pk", "agent_id", "action", "status", "created_at")
        .order_by("agent_id", "-created_at", "pk")
    )
    found: dict[int, list[Action]] = {}
    for row in rows:
        found.setdefault(row.agent_id, []).append(row)
    return found


def queue_item_contexts(actions: list[Action], *, detail: bool = True) -> list[dict[str, Any]]:
    """Everything a reviewer needs to decide each held action, in a fixed number of
    queries for any number of actions (their agent, owner and team loaded with them).
    Without ``detail`` (the compact list's rows): no params, state or recent actions."""
    prefetch_related_objects(actions, _VOTES)
    recent_by_agent = _recent_by_agent({a.agent_id for a in actions}) if detail else {}
    approvers = queue_approvers(actions)
    contexts = []
    for action in actions:
        votes = list(action.votes.all())
        approvals = sum(1 for v in votes if v.vote == Vote.APPROVE and not v.superseded)
        context = {
            "action": action,
            "agent": action.agent,
            "votes": votes,
            "approvals": approvals,
            "still_needed": max(action.approvals_required - approvals, 0),
            "approvers": approvers[action.pk],
        }
        if detail:
            recent = [r for r in recent_by_agent.get(action.agent_id, ()) if r.pk != action.pk]
            context["params_json"] = pretty_json(action.params)
            context["before_json"] = pretty_json(action.before)
            context["requested_params_json"] = pretty_json(action.requested_params)
            context["recent"] = recent[:RECENT]
        contexts.append(context)
    return contexts


def queue_approvers(actions: list[Action]) -> dict[uuid.UUID, Eligibility]:
    """Who may decide each action, for many cards at once (a fixed number of queries;
    the actions' votes prefetched)."""
    cases = [action_case(action, list(action.votes.all())) for action in actions]
    return {a.pk: answer for a, answer in zip(actions, approvers_for(cases), strict=True)}


def current_vote(*, user: Any, votes: list[ApprovalVote]) -> ApprovalVote | None:
    """This person's vote among an action's (loaded) votes that still counts."""
    return next((v for v in votes if v.voter_id == user.pk and not v.superseded), None)


def queue_item_context(action: Action) -> dict[str, Any]:
    """Everything a reviewer needs to decide one held action."""
    return queue_item_contexts([action])[0]


def queue_agent_id(*, user: Any, slug: str) -> int | None:
    """The id of the agent ``slug`` names, if this person may decide its actions."""
    agents = agents_with_perm(user=user, perm=APPROVE).filter(slug=slug)
    return agents.values_list("pk", flat=True).first()


def queue_filter_choices(*, user: Any) -> dict[str, list[tuple[str, str]]]:
    """(value, label) for the queue's filters: the agents with held actions this person
    may decide, and the teams of the agents they may decide. Bounded by what is held,
    not by the size of the registry."""
    may_decide = agents_with_perm(user=user, perm=APPROVE)
    held = _held_for(user)
    agents = (
        Agent.objects.filter(pk__in=held.values("agent_id"))
        .order_by(Lower("name"))
        .values_list("slug", "name")
    )
    teams = (
        Team.objects.filter(pk__in=may_decide.values("team_id"))
        .order_by("name")
        .values_list("slug", "name")
    )
    return {"agent": list(agents), "team": list(teams), "risk": list(RiskTier.choices)}


def action_get(*, user: Any, action_id: uuid.UUID) -> Action:
    """An action of an agent the person may view; 404 otherwise."""
    action = (
        Action.objects.select_related("agent__owner", "agent__team")
        .filter(pk=action_id, agent__in=agents_with_perm(user=user, perm=VIEW))
        .first()
    )
    if action is None:
        raise Http404("No such action.")
    return action


def action_story(*, action: Action) -> list[AuditEvent]:
    """Every audit event about this action, oldest first."""
    return list(
        AuditEvent.objects.filter(target_type="gateway.action", target_id=str(action.pk)).order_by(
            "seq"
        )
    )


def recent_actions(*, user: Any, agent_id: int | None = None, limit: int = 25) -> list[Action]:
    """The live feed's first page: newest actions of agents the person may view."""
    actions = Action.objects.filter(agent__in=agents_with_perm(user=user, perm=VIEW))
    if agent_id is not None:
        actions = actions.filter(agent_id=agent_id)
    return list(actions.select_related("agent").order_by("-created_at")[:limit])


def action_with_votes(*, action_id: uuid.UUID) -> Action:
    """One action with its agent, team and votes (with voters), for the approvals API."""
    votes = Prefetch("votes", queryset=ApprovalVote.objects.select_related("voter"))
    return (
        Action.objects.select_related("agent__owner", "agent__team")
        .prefetch_related(votes)
        .get(pk=action_id)
    )
