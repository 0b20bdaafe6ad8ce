"""The approval queue, voting, and an action's own page."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from oversight.agents.constants import APPROVE
from oversight.agents.permissions import user_has_agent_perm
from oversight.approvals import selectors
from oversight.approvals.services import approval_vote
from oversight.gateway.exceptions import ConflictError, NotFoundError


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    actions = selectors.approval_queue(user=request.user)
    approvers = selectors.queue_approvers(actions)
    items = [selectors.queue_item_context(action, approvers[action.pk]) for action in actions]
    return render(request, "approvals/queue.html", {"items": items})


@login_required
@require_POST
def vote(request: HttpRequest, action_id: uuid.UUID) -> HttpResponse:
    """Approve or deny; the answer replaces the queue item in place (htmx)."""
    action = selectors.action_get(user=request.user, action_id=action_id)  # 404 if not visible
    message, status = "", 200
    try:
        action = approval_vote(
            user=request.user,
            action_id=action.pk,
            vote=request.POST.get("vote", ""),
            comment=request.POST.get("comment", ""),
        )
    except PermissionDenied as exc:
        message, status = str(exc), 403
    except (ConflictError, NotFoundError) as exc:
        message, status = str(exc), 409
        action.refresh_from_db()
    except ValidationError as exc:
        message, status = " ".join(exc.messages), 422
    if not request.htmx:
        if message:
            messages.error(request, message)
        return redirect("approvals:action", action_id=action.pk)
    context = {**selectors.queue_item_context(action), "message": message, "ok": status == 200}
    return render(request, "approvals/_queue_item.html", context, status=status)


@login_required
@require_GET
def action_detail(request: HttpRequest, action_id: uuid.UUID) -> HttpResponse:
    action = selectors.action_get(user=request.user, action_id=action_id)
    context = selectors.queue_item_context(action)
    context["story"] = selectors.action_story(action=action)
    context["can_decide"] = request.user.pk in context["approvers"].could_vote
    context["may_see_queue"] = user_has_agent_perm(request.user, APPROVE, action.agent)
    return render(request, "approvals/action.html", context)
