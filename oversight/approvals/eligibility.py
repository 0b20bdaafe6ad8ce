"""Who may decide a held action, and who could satisfy a hold rule: the one implementation.

A person may approve a held action when they are active, have approve access to its agent
(granted on the agent, directly or through a group such as the team's reviewers), belong
to every approver set of the rules that held it (the action keeps a snapshot of them),
are not its agent's owner under separation of duties, and have not voted yet; nobody
approves a call of an MCP tool whose changed definition no owner has accepted. Admins are
the next approvers: they may decide an action when a rule names them (by role or by name)
and any escalated action (see ``oversight/approvals/escalation.py``). The voting service,
the cards, the notifications and the satisfiability check at rule save all read this
module; see docs/decisions/0018-explicit-approvers.md.

Everything is computed for many actions at once in a fixed number of queries
(``approvers_for``), so a queue of a thousand cards costs what one card costs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from oversight.accounts import roles
from oversight.agents.constants import APPROVE
from oversight.agents.models import Agent, AgentGroupObjectPermission, AgentUserObjectPermission
from oversight.approvals.models import ApprovalVote, Vote
from oversight.gateway.models import Action
from oversight.policy.constants import Approvers

# An approval of one call must not run a tool under a definition nobody accepted.
TOOL_NOT_ACCEPTED = (
    "This tool's definition changed since it was pinned and no owner has accepted the new "
    "one: calls to it may be denied, not approved, until an owner accepts it on the "
    "agent's page (MCP tools)."
)

ROLE_WORDS = {
    roles.ADMIN: "admins",
    roles.OWNER: "owners",
    roles.REVIEWER: "reviewers",
    roles.AUDITOR: "auditors",
}


@dataclass(frozen=True)
class ApproverSet:
    """One hold rule's answer to "who approves", as a held action keeps it."""

    rule: str
    kind: str
    role: str = ""
    people: tuple[int, ...] = ()

    @classmethod
    def of(cls, data: dict[str, Any]) -> ApproverSet:
        return cls(
            rule=str(data.get("rule", "")),
            kind=str(data.get("kind", Approvers.ACCESS)),
            role=str(data.get("role", "")),
            people=tuple(int(pk) for pk in data.get("people", ())),
        )


@dataclass
class Case:
    """What eligibility depends on, for one held action or one rule."""

    agent: Agent
    sets: list[ApproverSet]
    separation_of_duties: bool
    escalated: bool = False
    voted: set[int] = field(default_factory=set)
    approvals: int = 0  # approvals so far


@dataclass(frozen=True)
class Eligibility:
    """Who may decide one case, and the words that say so on a card or in an error."""

    eligible: list[Any]  # active people who may vote now, by username
    description: str  # "the team's reviewers", "admins", "rita, rob" ...
    could_vote: frozenset[int]  # ids who match (before owner and votes are taken out)
    admins: frozenset[int]
    holders: frozenset[int]  # ids with approve access on the agent


# --- reads, in bulk ---------------------------------------------------------------------


def _memberships(group_ids: Iterable[int]) -> dict[int, set[int]]:
    rows = (
        get_user_model()
        .groups.through.objects.filter(group_id__in=set(group_ids))
        .values_list("group_id", "user_id")
    )
    members: dict[int, set[int]] = {}
    for group_id, user_id in rows:
        members.setdefault(group_id, set()).add(user_id)
    return members


def _role_members(names: Iterable[str]) -> dict[str, set[int]]:
    rows = (
        get_user_model()
        .groups.through.objects.filter(group__name__in=set(names))
        .values_list("group__name", "user_id")
    )
    members: dict[str, set[int]] = {}
    for name, user_id in rows:
        members.setdefault(name, set()).add(user_id)
    return members


def _holders(agent_ids: set[int]) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
    """Approve access by agent (direct grants and group grants), and group members."""
    holders: dict[int, set[int]] = {pk: set() for pk in agent_ids}
    direct = AgentUserObjectPermission.objects.filter(
        content_object_id__in=agent_ids, permission__codename=APPROVE
    ).values_list("content_object_id", "user_id")
    for agent_id, user_id in direct:
        holders[agent_id].add(user_id)
    via_group = list(
        AgentGroupObjectPermission.objects.filter(
            content_object_id__in=agent_ids, permission__codename=APPROVE
        ).values_list("content_object_id", "group_id")
    )
    return holders, {agent_id: {g for a, g in via_group if a == agent_id} for agent_id in agent_ids}


def _describe(case: Case, names: dict[int, str]) -> str:
    parts = []
    for approver_set in case.sets:
        if approver_set.kind == Approvers.TEAM_REVIEWERS:
            parts.append(f"the reviewers of team {case.agent.team.name}")
        elif approver_set.kind == Approvers.ROLE:
            parts.append(ROLE_WORDS.get(approver_set.role, approver_set.role))
        elif approver_set.kind == Approvers.PEOPLE:
            named = sorted(names.get(pk, "a former user") for pk in approver_set.people)
            parts.append(", ".join(named) or "nobody named")
    text = " who are also ".join(parts) or "anyone with approve access"
    if case.separation_of_duties:
        text += ", not the owner"
    if case.escalated:
        text += "; escalated, so admins too"
    return text


def _matching(
    approver_set: ApproverSet,
    holders: set[int],
    team_reviewers: set[int],
    admins: set[int],
    by_role: dict[str, set[int]],
) -> set[int]:
    """Who one approver set admits. Admins count as having access only where a rule
    names them (by role or by name)."""
    if approver_set.kind == Approvers.TEAM_REVIEWERS:
        return team_reviewers & holders
    if approver_set.kind == Approvers.ROLE and approver_set.role == roles.ADMIN:
        return set(admins)
    if approver_set.kind == Approvers.ROLE:
        return by_role.get(approver_set.role, set()) & holders
    if approver_set.kind == Approvers.PEOPLE:
        return set(approver_set.people) & (holders | admins)
    return set(holders)


def _names_admins(case: Case) -> bool:
    return any(
        (s.kind == Approvers.ROLE and s.role == roles.ADMIN) or s.kind == Approvers.PEOPLE
        for s in case.sets
    )


def approvers_for(cases: Sequence[Case]) -> list[Eligibility]:
    """Who may decide each case, in a fixed number of queries whatever their number."""
    if not cases:
        return []
    agent_ids = {case.agent.pk for case in cases}
    holders, agent_groups = _holders(agent_ids)
    reviewer_groups = {
        case.agent.pk: case.agent.team.reviewers_group_id
        for case in cases
        if case.agent.team.reviewers_group_id
    }
    members = _memberships(
        {g for groups in agent_groups.values() for g in groups} | set(reviewer_groups.values())
    )
    for agent_id, groups in agent_groups.items():
        for group_id in groups:
            holders[agent_id] |= members.get(group_id, set())
    roles_used = {s.role for case in cases for s in case.sets if s.kind == Approvers.ROLE}
    by_role = _role_members(roles_used | {roles.ADMIN})
    user_model = get_user_model()
    admins = set(user_model.objects.filter(is_superuser=True).values_list("pk", flat=True))
    admins |= by_role.get(roles.ADMIN, set())
    named = {pk for case in cases for s in case.sets for pk in s.people}
    everyone = set().union(*holders.values(), admins, named)
    users = user_model.objects.filter(pk__in=everyone).order_by("username")
    active = {u.pk: u for u in users if u.is_active}
    names = {u.pk: u.get_username() for u in users}

    answers = []
    for case in cases:
        agent_holders = holders[case.agent.pk]
        team_reviewers = members.get(reviewer_groups.get(case.agent.pk, -1), set())
        may = set(agent_holders) | (admins if _names_admins(case) else set())
        for approver_set in case.sets:
            may &= _matching(approver_set, agent_holders, team_reviewers, admins, by_role)
        if case.escalated:
            may |= admins
        could_vote = frozenset(may & set(active))
        now = set(could_vote) - case.voted
        if case.separation_of_duties:
            now.discard(case.agent.owner_id)
        answers.append(
            Eligibility(
                eligible=sorted((active[pk] for pk in now), key=lambda u: u.get_username()),
                description=_describe(case, names),
                could_vote=could_vote,
                admins=frozenset(admins),
                holders=frozenset(agent_holders),
            )
        )
    return answers


# --- the cases --------------------------------------------------------------------------


def action_case(action: Action, votes: Iterable[ApprovalVote] | None = None) -> Case:
    """``votes``: the action's votes when already loaded (the queue prefetches them).
    Votes an edit superseded count for nothing: their people may vote again."""
    if votes is None:
        current = ApprovalVote.objects.filter(action=action, superseded=False)
        rows = list(current.values_list("voter_id", "vote"))
    else:
        rows = [(v.voter_id, v.vote) for v in votes if not v.superseded]
    return Case(
        agent=action.agent,
        sets=[ApproverSet.of(data) for data in action.approver_sets or []],
        separation_of_duties=action.separation_of_duties,
        escalated=action.escalated_at is not None,
        voted={voter for voter, _ in rows},
        approvals=sum(1 for _, vote in rows if vote == Vote.APPROVE),
    )


def rule_case(rule: Any) -> Case:
    """A hold rule as saved (its named people read from the database)."""
    from oversight.policy.compiled import approver_set

    return Case(
        agent=rule.agent,
        sets=[ApproverSet.of(approver_set(rule))],
        separation_of_duties=rule.separation_of_duties,
    )


def eligible_approvers(action: Action) -> list[Any]:
    """Active people who may decide this held action now (see the module's docstring);
    empty once it is no longer pending."""
    from oversight.gateway.constants import ActionStatus

    if action.status != ActionStatus.PENDING:
        return []
    return approvers_for([action_case(action)])[0].eligible


def rule_eligible_approvers(rule: Any) -> list[Any]:
    """Active people who could approve what this hold rule holds, as things stand."""
    return approvers_for([rule_case(rule)])[0].eligible


@dataclass(frozen=True)
class RuleApprovers:
    """Who could approve what one hold rule holds, and why that is too few ("" if not)."""

    eligible: list[Any]
    description: str
    problem: str


def _problem(rule: Any, answer: Eligibility) -> str:
    if len(answer.eligible) >= rule.approvals:
        return ""
    eligible = ", ".join(u.get_username() for u in answer.eligible) or "nobody"
    needs = f"{rule.approvals} approval{'s' if rule.approvals != 1 else ''}"
    count = len(answer.eligible)
    return (
        f"Rule “{rule.name}” needs {needs} from {answer.description}, but only {count} "
        f"{'person is' if count == 1 else 'people are'} eligible ({eligible}). Add team "
        "reviewers or grant reviewer access first."
    )


def rules_approvers(rules: Iterable[Any]) -> dict[int, RuleApprovers]:
    """For the hold rules among ``rules`` (with agent, team and approver_people loaded),
    by rule id: who could approve, in a fixed number of queries."""
    holds = [rule for rule in rules if rule.effect == "hold"]
    answers = approvers_for([rule_case(rule) for rule in holds])
    return {
        rule.pk: RuleApprovers(answer.eligible, answer.description, _problem(rule, answer))
        for rule, answer in zip(holds, answers, strict=True)
    }


def unsatisfiable_rules(*, agent: Agent) -> list[str]:
    """Why each of the agent's hold rules cannot be satisfied any more (the agent page's
    warnings): someone left, or access was revoked, after the rule was saved."""
    return [problem for _, problem in _unsatisfiable(agent.rules.all())]


def team_unsatisfiable_rules(*, team: Any) -> list[str]:
    """The same for every agent of ``team``, each named (the team page's warnings), in a
    fixed number of queries."""
    from oversight.policy.models import Rule  # approvals -> policy

    found = _unsatisfiable(Rule.objects.filter(agent__team=team).order_by("agent__name", "pk"))
    return [f"{rule.agent.name}: {problem}" for rule, problem in found]


def _unsatisfiable(rules: Any) -> list[tuple[Any, str]]:
    holds = list(
        rules.filter(effect="hold")
        .select_related("agent__team")
        .prefetch_related("approver_people")
    )
    found = rules_approvers(holds)
    return [(rule, found[rule.pk].problem) for rule in holds if found[rule.pk].problem]


def rule_unsatisfiable(rule: Any) -> str:
    """Why fewer people can approve what the rule holds than it needs; "" when enough."""
    if rule.effect != "hold":
        return ""
    return _problem(rule, approvers_for([rule_case(rule)])[0])


def vote_refusal(*, action: Action, user: Any, vote: str) -> str:
    """Why ``user`` may not cast ``vote`` on this pending action now; "" when they may.
    (Already voted is a conflict, not a refusal: the caller says so.)"""
    answer = approvers_for([action_case(action)])[0]
    if user.pk in answer.could_vote:
        if vote == Vote.APPROVE and action.awaits_tool_acceptance:
            return TOOL_NOT_ACCEPTED
        owner = user.pk == action.agent.owner_id
        if vote == Vote.APPROVE and action.separation_of_duties and owner:
            return "The agent's owner may not approve this action (separation of duties)."
        return ""
    if user.pk in answer.admins and user.pk not in answer.holders:
        return (
            f"This action is for {answer.description} to decide; admins may decide it once "
            "it is escalated to them."
        )
    if user.pk not in answer.holders and user.pk not in answer.admins:
        return "You may not decide this agent's actions."
    return f"This action is for {answer.description} to decide; you are not one of them."


def agent_approvers(*, agent: Agent) -> Any:
    """Active people with approve access on the agent (granted directly, through a group
    or as the team's reviewers), as one statement: who hears of the agent's alerts and
    held actions when no rule narrows it. The same guardian rows ``approvers_for`` reads
    in bulk as its holders."""
    direct = AgentUserObjectPermission.objects.filter(
        content_object=agent, permission__codename=APPROVE
    ).values("user_id")
    via_group = AgentGroupObjectPermission.objects.filter(
        content_object=agent, permission__codename=APPROVE
    ).values("group_id")
    members = get_user_model().groups.through.objects.filter(group_id__in=via_group)
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(pk__in=direct) | Q(pk__in=members.values("user_id")))
        .order_by("pk")
    )
