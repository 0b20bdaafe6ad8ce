"""Provenance for people: one call shows what decided an action (personal tokens)."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Router

from oversight.approvals.api import PersonBearer
from oversight.approvals.selectors import action_get
from oversight.gateway.schemas import API_ERRORS
from oversight.incidents.provenance import action_provenance

router = Router(auth=PersonBearer(), tags=["provenance"])


@router.get(
    "/{action_id}",
    response={200: dict[str, Any], **API_ERRORS},
    summary="What decided an action",
    operation_id="get_provenance",
)
def get_provenance(request: HttpRequest, action_id: uuid.UUID) -> dict[str, Any]:
    """Its release and policy version, the grants, rules and limits that decided it (with
    the limits' windows), the voters, session and trace, and its undo: for an action of
    an agent the token's person may view (404 otherwise)."""
    return action_provenance(action=action_get(user=request.user, action_id=action_id))
