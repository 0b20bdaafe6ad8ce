"""Which incidents a person sees and may handle, filtered in the database."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from oversight.accounts import roles
from oversight.agents.constants import APPROVE, CHANGE
from oversight.agents.models import Agent
from oversight.agents.permissions import user_has_agent_perm
from oversight.agents.selectors import agents_with_perm
from oversight.gateway.models import Action
from oversight.incidents.models import Incident, IncidentScope, IncidentStatus, TriggerKind
from oversight.monitoring.selectors import alerts_visible

STATUS_FILTERS = {"unresolved": [IncidentStatus.OPEN, IncidentStatus.INVESTIGATING]}


def incidents_visible(*, user: Any) -> QuerySet[Incident]:
    """Nobody sees anything of an agent they may not view, and an incident's report is
    about every agent of its scope together (its series, break, causes and blast radius
    are of all of them), so: an agent's incident to those who may view the agent; a
    team's to those who may view every agent of the team; everyone's to those who may
    view every agent. In each case also every agent its report covers (``covered``: one
    moved to another team since stays in the report it is in). Admins see them all."""
    if roles.is_admin(user):
        return Incident.objects.all()
    viewable = agents_with_perm(user=user)
    hidden = Agent.objects.exclude(pk__in=viewable.values("pk"))
    visible = (
        Q(scope=IncidentScope.AGENT, agent__in=viewable.values("pk"))
        | Q(
            ~Exists(hidden.filter(team_id=OuterRef("team_id"))),
            scope=IncidentScope.TEAM,
            team__in=viewable.values("team_id"),
        )
        | Q(Exists(viewable), ~Exists(hidden), scope=IncidentScope.GLOBAL)
    )
    covers_hidden = Exists(hidden.filter(covering_incidents=OuterRef("pk")))
    return Incident.objects.filter(visible).exclude(covers_hidden)


def incidents_out_of_view(*, user: Any) -> QuerySet[Incident]:
    """The incidents over agents this person may view that she may not read, because they
    are also about agents she may not view (``incidents_visible``): a team's incident, for
    someone who views some of its agents. Listed without their content (who to ask), so
    that a kill switch's "See the incident" does not lead to a list without it."""
    if roles.is_admin(user):
        return Incident.objects.none()
    viewable = agents_with_perm(user=user)
    touches = (
        Q(scope=IncidentScope.AGENT, agent__in=viewable.values("pk"))
        | Q(scope=IncidentScope.TEAM, team__in=viewable.values("team_id"))
        | Q(Exists(viewable), scope=IncidentScope.GLOBAL)
        | Q(Exists(viewable.filter(covering_incidents=OuterRef("pk"))))
    )
    read = incidents_visible(user=user).values("pk")
    return Incident.objects.filter(touches).exclude(pk__in=read)


def _listed(found: QuerySet[Incident], status: str) -> QuerySet[Incident]:
    if status in STATUS_FILTERS:
        found = found.filter(status__in=STATUS_FILTERS[status])
    elif status in IncidentStatus.values:
        found = found.filter(status=status)
    return found.order_by("-opened_at")


def incident_list(*, user: Any, status: str = "unresolved", agent: str = "") -> QuerySet[Incident]:
    found = incidents_visible(user=user).select_related("agent", "team", "owner")
    if agent:
        found = found.filter(agent__slug=agent)
    return _listed(found, status)


def incident_list_out_of_view(*, user: Any, status: str = "unresolved") -> QuerySet[Incident]:
    """``incidents_out_of_view`` as the list filters them."""
    found = incidents_out_of_view(user=user).select_related("team", "owner", "opened_by")
    return _listed(found, status)


def incident_get(*, user: Any, pk: int) -> Incident:
    incident = (
        incidents_visible(user=user)
        .select_related("agent", "team", "owner", "opened_by")
        .filter(pk=pk)
        .first()
    )
    if incident is None:
        raise Http404("No such incident.")
    return incident


def user_can_handle(user: Any, incident: Incident) -> bool:
    """Set its owner and status, add notes, analyse again: the agent's owners and
    reviewers, and admins (a team's or everyone's incident: admins)."""
    if incident.agent is None:
        return roles.is_admin(user)
    return agent_incident_allowed(user, incident.agent)


def agent_incident_allowed(user: Any, agent: Any) -> bool:
    """Who may open one by hand for an agent: as who may handle the agent's incidents."""
    return roles.is_admin(user) or (
        user_has_agent_perm(user, CHANGE, agent) or user_has_agent_perm(user, APPROVE, agent)
    )


def owner_choices(*, incident: Incident) -> QuerySet[Any]:
    """Who may be named its owner: the scope team's members and reviewers, and admins."""
    users = get_user_model().objects.filter(is_active=True)
    admins = Q(is_superuser=True) | Q(groups__name=roles.ADMIN)
    team = incident.agent.team if incident.agent else incident.team
    if team is None:
        return users.filter(admins).distinct().order_by("username")
    members = Q(groups=team.group_id)
    if team.reviewers_group_id:
        members |= Q(groups=team.reviewers_group_id)
    if incident.agent is not None:
        members |= Q(pk=incident.agent.owner_id)
    return users.filter(admins | members).distinct().order_by("username")


def incident_opened_from(
    *,
    user: Any,
    agent: Agent,
    title: str = "",
    action_id: uuid.UUID | None = None,
    alert_id: int | None = None,
) -> dict[str, Any]:
    """What one opened by hand is opened from (``services.incident_open``'s trigger): the
    action or the alert given, else the agent. An action or alert that is not this agent's,
    that the person may not view, or that does not exist is refused (ValidationError), the
    same words for each so nothing leaks; it is never dropped to open one without it."""
    if action_id is not None and alert_id is not None:
        raise ValidationError("Open it from an action or from an alert, not both.")
    if action_id is not None:
        viewable = agents_with_perm(user=user).filter(pk=agent.pk)
        action = Action.objects.filter(pk=action_id, agent__in=viewable).first()
        if action is None:
            raise ValidationError({"action_id": [f"{agent.slug} has no action {action_id}."]})
        summary = f"Opened from {action.action} on {action.resource}"
        target = ("gateway.action", str(action.pk))
    elif alert_id is not None:
        alert = alerts_visible(user=user).filter(pk=alert_id, agent=agent).first()
        if alert is None:
            raise ValidationError({"alert_id": [f"{agent.slug} has no alert {alert_id}."]})
        summary = f"Opened from the alert: {alert.title}"
        target = ("monitoring.alert", str(alert.pk))
    else:
        summary = f"Opened for {agent.name}"
        target = ("agents.agent", str(agent.pk))
    return {
        "kind": TriggerKind.MANUAL,
        "target": target,
        "summary": summary,
        "title": title or summary,
    }


def incident_of_switch(*, user: Any, switch_id: int) -> Incident | None:
    """The newest incident a kill switch opened, if the user may see it."""
    found = incidents_visible(user=user).filter(
        triggers__target_type="killswitch.killswitch", triggers__target_id=str(switch_id)
    )
    return found.order_by("-opened_at").first()
