"""Incidents for people (personal tokens): open one, list them, read one with its
analysis (the same document as the page's JSON export), and analyse it again."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Schema, Status

from oversight.agents.access import AgentAccessDenied
from oversight.agents.selectors import agent_get
from oversight.approvals.api import PersonBearer
from oversight.audit.actors import Actor
from oversight.gateway.json_safety import NO_NUL
from oversight.gateway.schemas import API_ERRORS
from oversight.incidents import selectors, services
from oversight.incidents.export import incident_document

router = Router(auth=PersonBearer(), tags=["incidents"])
MAX_ID = 2**63 - 1


class IncidentIn(Schema):
    agent: str = Field(..., min_length=1, max_length=100, description="The agent's slug.")
    title: str = Field("", max_length=200, json_schema_extra={"pattern": NO_NUL})
    action_id: uuid.UUID | None = Field(None, description="Opened from this action.")
    alert_id: int | None = Field(None, ge=1, le=MAX_ID, description="Opened from this alert.")


class IncidentFilters(Schema):
    status: Literal["unresolved", "open", "investigating", "resolved", ""] = "unresolved"
    agent: str = Field("", max_length=100)


@router.post(
    "",
    response={201: dict[str, Any], **API_ERRORS},
    summary="Open an incident for an agent",
    operation_id="open_incident",
)
def open_incident(request: HttpRequest, payload: IncidentIn) -> Status:
    """Opened by the token's person (owners, reviewers and admins of the agent; 404 for an
    agent they may not view). An ``action_id`` or ``alert_id`` that is not one of the
    agent's: 422, nothing opened. Its analysis is queued at once: read it back until
    ``analysis.state`` is ``done``."""
    agent = agent_get(user=request.user, slug=payload.agent)
    if not selectors.agent_incident_allowed(request.user, agent):
        raise AgentAccessDenied("Only the agent's owners and reviewers, and admins, open one.")
    trigger = selectors.incident_opened_from(
        user=request.user,
        agent=agent,
        title=payload.title,
        action_id=payload.action_id,
        alert_id=payload.alert_id,
    )
    incident, _ = services.incident_open(
        actor=Actor.for_user(request.user), user=request.user, agent=agent, **trigger
    )
    incident.refresh_from_db()
    return Status(201, incident_document(incident))


@router.get(
    "",
    response={200: list[dict[str, Any]], **API_ERRORS},
    summary="Incidents the person may view",
    operation_id="list_incidents",
)
def list_incidents(request: HttpRequest, filters: Query[IncidentFilters]) -> list[dict[str, Any]]:
    """Newest first, at most 100, without their reports (read one for it)."""
    found = selectors.incident_list(user=request.user, status=filters.status, agent=filters.agent)
    return [{**incident_document(i), "report": None} for i in found[:100]]


@router.get(
    "/{incident_id}",
    response={200: dict[str, Any], **API_ERRORS},
    summary="One incident with its analysis",
    operation_id="get_incident",
)
def get_incident(
    request: HttpRequest, incident_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    """Its triggers, notes and analysis: the break point, ranked causes with evidence,
    the blast radius, the timeline and the behaviour series."""
    return incident_document(selectors.incident_get(user=request.user, pk=incident_id))


@router.post(
    "/{incident_id}/analyse",
    response={202: dict[str, Any], **API_ERRORS},
    summary="Analyse an incident again",
    operation_id="analyse_incident",
)
def analyse_incident(request: HttpRequest, incident_id: int = Path(..., ge=1, le=MAX_ID)) -> Status:
    incident = selectors.incident_get(user=request.user, pk=incident_id)
    if not selectors.user_can_handle(request.user, incident):
        raise AgentAccessDenied("Only the agent's owners and reviewers, and admins, handle it.")
    services.incident_reanalyse(incident=incident)
    incident.refresh_from_db()
    return Status(202, incident_document(incident))
