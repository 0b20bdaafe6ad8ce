"""The agent API, version 1. Handlers parse, call one service or selector, and answer."""

from __future__ import annotations

import uuid
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from ninja import Header, NinjaAPI, Query, Status
from ninja.security import HttpBearer

from oversight.agents.constants import Environment
from oversight.agents.models import Agent, AgentToken
from oversight.gateway import lifecycle, pipeline, selectors, tools
from oversight.gateway.auth import token_authenticate
from oversight.gateway.constants import MAX_WAIT_SECONDS, ActionStatus
from oversight.gateway.errors import install_error_handlers
from oversight.gateway.exceptions import NotFoundError
from oversight.gateway.json_safety import NO_NUL
from oversight.gateway.models import Action
from oversight.gateway.schemas import (
    API_ERRORS,
    ActionIn,
    ActionOut,
    AgentOut,
    DecisionOut,
    ReleaseOut,
    ResultIn,
    ToolsIn,
    ToolsOut,
)
from oversight.killswitch.selectors import halting_switch
from oversight.lib.humanize import person_name
from oversight.lib.long_poll import poll
from oversight.releases.selectors import release_for_session

_POLL_SECONDS = 0.25


class AgentBearer(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> AgentToken | None:
        return token_authenticate(token)


class _AgentApi(NinjaAPI):
    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(*args, **kwargs)
        for path, operations in schema["paths"].items():
            if path.endswith("/actions") and "post" in operations:
                for code in (200, 201):  # ninja keys responses by int
                    operations["post"]["responses"][code]["links"] = _ACTION_LINKS
        return schema


api = _AgentApi(
    title="Oversight agent API",
    version="1",
    description=(
        "Ask before acting: agents call `POST /actions` before each consequential action and "
        "act only on `allowed` (or `approved`). See docs/api.md."
    ),
    urls_namespace="api-v1",
    auth=AgentBearer(),
)
install_error_handlers(api)

_ERRORS = API_ERRORS
# OpenAPI links: the id a decision returns is what the other action operations take.
_ACTION_LINKS = {
    "ReadAction": {"operationId": "get_action", "parameters": {"action_id": "$response.body#/id"}},
    "CancelAction": {
        "operationId": "cancel_action",
        "parameters": {"action_id": "$response.body#/id"},
    },
    "ReportResult": {
        "operationId": "report_result",
        "parameters": {"action_id": "$response.body#/id"},
    },
}


def decision_body(action: Action, *, first_answer: bool = False) -> dict[str, object]:
    """The answer to POST /actions; ``first_answer`` for a retry with the same
    Idempotency-Key: the status as first decided, whatever has happened since."""
    return {
        "id": action.id,
        "status": (action.decision or action.status) if first_answer else action.status,
        "reasons": action.reasons,
        "policy_version": action.policy_version,
        "release": action.release_version,
        "reversibility": action.reversibility or None,
        "expires_at": action.expires_at,
        "request_id": action.request_id,
    }


def vote_body(vote: Any) -> dict[str, object]:
    """One reviewer's vote as the API shows it (``ApprovalVote`` with its voter)."""
    voter = vote.voter
    return {
        "voter": {
            "username": voter.get_username(),
            "name": person_name(voter),
        },
        "vote": vote.vote,
        "comment": vote.comment,
        "at": vote.created_at,
        "params": vote.params,
        "superseded": vote.superseded,
    }


def action_body(action: Action) -> dict[str, object]:
    """An action in full; its votes read with ``action.votes.all()`` (prefetch them)."""
    return {
        **decision_body(action),
        "action": action.action,
        "resource": action.resource,
        "params": action.params,
        "edited": action.requested_params is not None,
        "requested_params": action.requested_params,
        "approvals_required": action.approvals_required,
        "votes": _votes(action),
        "created_at": action.created_at,
        "finished_at": action.finished_at,
        "acknowledged_at": action.acknowledged_at,
        "started_at": action.started_at,
        "error": action.error,
        "reports_outcome": action.reports_outcome,
        "resource_params": action.resource_params,
    }


def _votes(action: Action) -> list[dict[str, object]]:
    """Only a held action is voted on (approvals/services.py): one allowed at once has no
    votes, and they are not read (most reports are of such actions)."""
    if action.decision == ActionStatus.ALLOWED:
        return []
    return [vote_body(vote) for vote in action.votes.all()]


@api.post(
    "/actions",
    response={200: DecisionOut, 201: DecisionOut, **_ERRORS},
    summary="Ask to take an action",
    operation_id="create_action",
)
def create_action(
    request: HttpRequest,
    payload: ActionIn,
    idempotency_key: str = Header("", alias="Idempotency-Key", max_length=200),
) -> Status:
    """201 with the decision for a new action; 200 with the first answer when the same
    Idempotency-Key and body are sent again; 409 when the key was used with another body."""
    action, created = pipeline.decide(
        credentials=pipeline.Credentials.of(request.auth),
        data=pipeline.ActionInput(**payload.model_dump()),
        idempotency_key=idempotency_key,
    )
    return Status(201 if created else 200, decision_body(action, first_answer=not created))


@api.get(
    "/actions/{action_id}",
    response={200: ActionOut, **_ERRORS},
    summary="Read an action",
    operation_id="get_action",
)
async def get_action(
    request: HttpRequest,
    action_id: uuid.UUID,
    wait: float = Query(0, ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait while pending."),
) -> dict[str, object]:
    """With `wait`, a pending action is long-polled until decided or the time is up; the
    server holds no thread while waiting."""
    read = sync_to_async(selectors.action_with_votes_for_agent)
    action = await poll(
        lambda: read(token=request.auth, action_id=action_id),
        lambda found: found.status != ActionStatus.PENDING,
        wait=wait,
        every=_POLL_SECONDS,
    )
    return action_body(action)


@api.post(
    "/actions/{action_id}/result",
    response={200: ActionOut, **_ERRORS},
    summary="Report the outcome of an action",
    operation_id="report_result",
)
def report_result(
    request: HttpRequest, action_id: uuid.UUID, payload: ResultIn
) -> dict[str, object]:
    """Once only, and only for an allowed or approved action of this agent."""
    return result_answer(request.auth, action_id, payload)


def result_answer(token: AgentToken, action_id: uuid.UUID, payload: ResultIn) -> dict[str, object]:
    """The report's work and answer, for this view and the fast lane (fastlane.py)."""
    data = lifecycle.ResultInput(**payload.model_dump())
    return action_body(lifecycle.action_report_result(token=token, action_id=action_id, data=data))


@api.post(
    "/actions/{action_id}/start",
    response={200: ActionOut, **_ERRORS},
    summary="Claim the run of an approved action",
    operation_id="start_action",
)
def start_action(request: HttpRequest, action_id: uuid.UUID) -> dict[str, object]:
    """Before running an approved action: granted once (409 `already_started` after), so
    two callers waiting on one approval do not both run it."""
    return action_body(lifecycle.action_start(token=request.auth, action_id=action_id))


@api.post(
    "/actions/{action_id}/cancel",
    response={200: ActionOut, **_ERRORS},
    summary="Give up on an action that has not run",
    operation_id="cancel_action",
)
def cancel_action(
    request: HttpRequest,
    action_id: uuid.UUID,
    pending_only: bool = Query(
        False,
        description="Cancel only while nobody has decided it: one a person approved "
        "meanwhile is left approved, to be run, and the cancel is refused (409).",
    ),
) -> dict[str, object]:
    """Only for a pending or approved action of this agent; its reserved quota is released."""
    cancelled = lifecycle.action_cancel(
        token=request.auth, action_id=action_id, pending_only=pending_only
    )
    return action_body(cancelled)


@api.post(
    "/actions/{action_id}/acknowledge",
    response={200: ActionOut, **_ERRORS},
    summary="Say the caller was told how an action ended without running",
    operation_id="acknowledge_action",
)
def acknowledge_action(request: HttpRequest, action_id: uuid.UUID) -> dict[str, object]:
    """For an action of this agent that was denied, halted, rejected, expired or
    cancelled: recorded once (`acknowledged_at`). oversight-mcp uses it to show a held
    call's refusal to the next identical call once, not again."""
    token = request.auth
    return action_body(lifecycle.action_acknowledge(token=token, action_id=action_id))


@api.get(
    "/agent",
    response={200: AgentOut, **_ERRORS},
    summary="This agent's own status",
    operation_id="get_agent",
)
def get_agent(request: HttpRequest) -> dict[str, object]:
    token: AgentToken = request.auth
    agent = token.agent
    switch = halting_switch(agent_id=agent.pk)
    return {
        "slug": agent.slug,
        "name": agent.name,
        "team": agent.team.slug,
        "status": agent.status,
        "environment": token.environment,
        "halted": switch is not None,
        "halted_reason": switch.reason if switch else "",
        "policy_version": agent.policy_version,
    }


@api.get(
    "/agent/release",
    response={200: ReleaseOut, **_ERRORS},
    summary="The release this session of the agent runs",
    operation_id="get_agent_release",
)
def get_agent_release(
    request: HttpRequest,
    session_id: str = Query(
        "", max_length=100, pattern=NO_NUL, description="The agent's session, if any."
    ),
) -> dict[str, object]:
    """The instructions, model and tools this agent should run with, from its release in
    force. An agent that loads them from here is rolled out and rolled back with its
    releases, with no deploy of its own. Sticky per session."""
    token: AgentToken = request.auth
    agent = token.agent
    release = release_for_session(agent=agent, environment=token.environment, session_id=session_id)
    if release is None:
        raise NotFoundError("This agent has no release yet.")
    config = release.content.get("config", {})
    return {
        "version": release.version,
        "digest": release.digest,
        "stage": _stage(agent, token.environment, release.pk),
        "created_at": release.created_at,
        "notes": release.notes,
        "instructions": config.get("instructions", ""),
        "model": config.get("model_name", ""),
        "model_settings": config.get("model_settings") or {},
        "tools": config.get("tools") or [],
    }


def _stage(agent: Agent, environment: str, release_id: int) -> str:
    if release_id == agent.stable_release_id:
        return "stable"
    return "staging" if environment == Environment.STAGING else "canary"


@api.post(
    "/tools",
    response={200: ToolsOut, **_ERRORS},
    summary="Show Oversight the tools this agent reaches",
    operation_id="tools_seen",
)
def post_tools(request: HttpRequest, payload: ToolsIn) -> dict[str, object]:
    """An MCP proxy sends the tools it lists. Each definition (description and input
    schema) is pinned the first time; a different one later holds every call to the tool
    until an owner accepts it on the agent's page. Answers which tools the agent may use."""
    seen = [tool.dict() for tool in payload.tools]
    return {"tools": tools.tools_seen(token=request.auth, tools=seen)}


# The approvals API for people (personal tokens) shares this API's document and errors.
from oversight.approvals.api import router as approvals_router  # noqa: E402

api.add_router("/approvals", approvals_router)


def _routers() -> None:
    """Routers of other apps on this API (their modules import this one's helpers)."""
    from oversight.incidents.api import router as provenance
    from oversight.incidents.diff_api import router as behaviour_diff
    from oversight.incidents.incident_api import router as incidents
    from oversight.rewind.api import router as compensations

    api.add_router("/compensations", compensations)
    api.add_router("/provenance", provenance)
    api.add_router("/behaviour-diff", behaviour_diff)
    api.add_router("/incidents", incidents)


_routers()
