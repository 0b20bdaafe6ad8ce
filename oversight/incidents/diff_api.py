"""The behaviour diff for people (personal tokens): the page's comparison as JSON."""

from __future__ import annotations

from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Query, Router

from oversight.agents.selectors import agent_get
from oversight.approvals.api import PersonBearer
from oversight.gateway.schemas import API_ERRORS
from oversight.incidents.behaviour_diff import SideError, behaviour_diff
from oversight.incidents.diff_display import as_json
from oversight.incidents.diff_sides import sides_parse

router = Router(auth=PersonBearer(), tags=["behaviour diff"])

SIDE = (
    "A release of the agent (`v3`) or a window `start/end`: ISO datetimes "
    "(`2026-12-01T10:00/2026-12-01T11:00`, UTC unless they say otherwise) or durations "
    "back from now (`2h/1h`; an end of `now` or nothing is now)."
)


@router.get(
    "/{slug}",
    response={200: dict[str, Any], **API_ERRORS},
    summary="How an agent behaved on two sides: releases or windows",
    operation_id="get_behaviour_diff",
)
def get_behaviour_diff(
    request: HttpRequest,
    slug: str,
    left: str = Query(..., description=SIDE, max_length=200),
    right: str = Query(..., description=SIDE, max_length=200),
    env: Literal["production", "staging", "all"] = Query(
        "production", description="Whose decisions: one environment, or all."
    ),
) -> dict[str, Any]:
    """Action and decision mix, failure and rejection rates, numeric params and resource
    families of the agent on both sides, each difference with its test, p-value (and
    corrected p-value) and whether it is flagged; for an agent the token's person may view
    (404 otherwise). A side that is not a release of the agent or not a window: 422."""
    agent = agent_get(user=request.user, slug=slug)
    try:
        sides = sides_parse(agent=agent, left=left, right=right, environment=env)
    except SideError as exc:
        raise ValidationError({exc.field: [str(exc)]}) from None
    return as_json(behaviour_diff(agent=agent, left=sides[0], right=sides[1]))
