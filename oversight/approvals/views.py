"""The approval queue, voting, and an action's own page."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh

from oversight.agents.access import AgentAccessDenied
from oversight.agents.constants import APPROVE
from oversight.agents.permissions import user_has_agent_perm, user_may_record_outcomes
from oversight.approvals import selectors
from oversight.approvals.edits import edited_params_parse
from oversight.approvals.forms import CARDS, LIST, QueueFilterForm, SettleForm
from oversight.approvals.models import Vote
from oversight.approvals.services import approval_vote
from oversight.audit.actors import Actor
from oversight.gateway.constants import ActionStatus
from oversight.gateway.exceptions import ConflictError, NotFoundError
from oversight.gateway.models import Action
from oversight.gateway.settling import (
    OUTCOMES,
    action_settle,
    outcome_unknown,
    settleable_from,
)
from oversight.incidents.provenance import action_provenance
from oversight.lib.htmx import render_page_or_fragment
from oversight.live import pages
from oversight.rewind.selectors import undo_panel


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """Filtered by agent, team and risk, as cards or a compact list, a page at a time;
    htmx swaps only the region below the filters (and its socket, which says what the
    region shows)."""
    form = QueueFilterForm(request.GET or None, user=request.user)
    filters, view = form.filters(), form.chosen_view()
    number = form.page_number()
    cards = view != LIST
    page = selectors.approval_queue_page(
        user=request.user,
        filters=filters,
        number=number,
        size=selectors.PAGE_SIZE if cards else selectors.LIST_PAGE_SIZE,
        detail=cards,
    )
    context = {
        "form": form,
        "filters": filters,
        "view": view,
        "page": page,
        "socket": _socket_address(request.user, filters, view),
    }
    return render_page_or_fragment(
        request, "approvals/queue.html", "approvals/_queue_region.html", context
    )


def _socket_address(user: Any, filters: selectors.QueueFilters, view: str) -> str:
    """What the region shows, for its live socket (oversight/live/pages.py). An agent
    filter naming no agent gets an id no agent has: the socket then shows nothing."""
    agent_id = None
    if filters.agent:
        agent_id = selectors.queue_agent_id(user=user, slug=filters.agent) or 0
    region = pages.QUEUE_LIST if view == LIST else pages.QUEUE
    return pages.address([region], agent_id=agent_id, team=filters.team, risk=filters.risk)


@login_required
@require_POST
def vote(request: HttpRequest, action_id: uuid.UUID) -> HttpResponse:
    """Approve or deny; the answer replaces the queue item in place (htmx), or, on the
    action's own page, shows that page anew. Every vote form sends the ``request_hash``
    it shows: an approval of an action edited since is refused, and the answer shows it
    as it is now."""
    action = selectors.action_get(user=request.user, action_id=action_id)  # 404 if not visible
    message, status, changed = "", 200, False
    edited_text = request.POST.get("params", "")
    try:
        action = approval_vote(
            user=request.user,
            action_id=action.pk,
            vote=request.POST.get("vote", ""),
            comment=request.POST.get("comment", ""),
            params=edited_params_parse(edited_text) if "params" in request.POST else None,
            seen=request.POST.get("request_hash", ""),
        )
    except PermissionDenied as exc:
        message, status = str(exc), 403
    except (ConflictError, NotFoundError) as exc:
        message, status = str(exc), 409
        changed = getattr(exc, "code", "") == "action_changed"
    except ValidationError as exc:
        message, status = " ".join(exc.messages), 422
    if status != 200:
        action.refresh_from_db()  # a refused vote or edit changed nothing
    typed = _typed_back(request, refused=status != 200, changed=changed)
    # Voted on the action's own page (or without htmx): all of it (its status, its story)
    # changed, so the page is shown anew, saying what the vote did.
    on_its_page = not request.htmx or request.htmx.current_url_abs_path == _page_of(action)
    if on_its_page and status == 200:
        messages.success(request, _voted(action, request.POST["vote"]))
    if not request.htmx:
        if message:
            messages.error(request, message)
        if typed.get("edit_open"):  # the action's page, with what was typed in its editor
            return _action_page(request, action, status=status, typed=typed)
        return redirect("approvals:action", action_id=action.pk)
    if on_its_page and status == 200:
        return HttpResponseClientRefresh()
    if on_its_page and changed:  # edited since it was loaded: its params, facts and story
        messages.error(request, message)
        return HttpResponseClientRefresh()
    context = {**selectors.queue_item_context(action), "message": message, "ok": status == 200}
    context |= typed
    view = LIST if request.POST.get("view") == LIST else CARDS
    element = _queue_element(request, action, context, view, status=status)
    what = f"{action.action} on {action.resource} ({action.agent.name})"
    if status == 200:  # said above the queue too: the card leaves it once decided
        words = {"action": action, "words": _voted(action, request.POST["vote"], what=what)}
        element.write(render_to_string("approvals/_vote_status.html", words, request=request))
    elif status == 409 and action.status != ActionStatus.PENDING:
        # Decided by someone else meanwhile: the live queue may have taken the card away
        # already, so the refusal is said above the queue, where it stays.
        words = {"action": action, "refused": True, "words": f"{what}: {message}"}
        element.write(render_to_string("approvals/_vote_status.html", words, request=request))
    return element


def _queue_element(
    request: HttpRequest, action: Action, context: dict[str, Any], view: str, status: int = 200
) -> HttpResponse:
    """The action's place in this person's queue: her vote while it waits for others (no
    buttons: it has left her queue), else its card, or its row in the compact list."""
    your_vote = selectors.current_vote(user=request.user, votes=context["votes"])
    if action.status == ActionStatus.PENDING and your_vote:
        context |= {"your_vote": your_vote, "view": view}
        return render(request, "approvals/_queue_voted.html", context, status=status)
    template = "_queue_row.html" if view == LIST else "_queue_item.html"
    return render(request, f"approvals/{template}", context, status=status)


@login_required
@require_GET
def queue_item(request: HttpRequest, action_id: uuid.UUID) -> HttpResponse:
    """What the vote answers, read again: a card showing a person's vote re-reads itself
    with this when its action changes and stays hers to wait on, another's vote counted
    (static/js/oversight.js). Nothing once the action has left the queue, or for someone
    who may not decide it."""
    action = selectors.action_get(user=request.user, action_id=action_id)  # 404 if not visible
    if action.status != ActionStatus.PENDING or not user_has_agent_perm(
        request.user, APPROVE, action.agent
    ):
        return HttpResponse("")
    view = LIST if request.GET.get("view") == LIST else CARDS
    return _queue_element(request, action, selectors.queue_item_context(action), view)


def _typed_back(request: HttpRequest, *, refused: bool, changed: bool) -> dict[str, str | bool]:
    """What the reviewer typed, back in the form she sent it from, when her vote was
    refused: an edit's params and note (its editor open), or a vote's comment. Not when
    the action was edited meanwhile: the card shows its new params, and what was typed was
    for the old."""
    if not refused or changed:
        return {}
    comment = request.POST.get("comment", "")
    if "params" in request.POST:
        return {"edit_open": True, "edited_text": request.POST["params"], "edited_comment": comment}
    return {"vote_comment": comment}


def _page_of(action: Action) -> str:
    return reverse("approvals:action", kwargs={"action_id": action.pk})


def _voted(action: Action, vote: str, what: str = "this action") -> str:
    if vote == Vote.DENY:
        return f"You denied {what}."
    if action.status == ActionStatus.PENDING:
        return f"Your approval of {what} is recorded; it needs more approvals before it runs."
    return f"You approved {what}."


@login_required
@require_GET
def action_detail(request: HttpRequest, action_id: uuid.UUID) -> HttpResponse:
    action = selectors.action_get(user=request.user, action_id=action_id)
    return _action_page(request, action)


def _action_page(
    request: HttpRequest,
    action: Action,
    settle_form: SettleForm | None = None,
    status: int = 200,
    typed: dict[str, str | bool] | None = None,
) -> HttpResponse:
    context = selectors.queue_item_context(action) | (typed or {})
    context["story"] = selectors.action_story(action=action)
    # Someone who voted has nothing more to decide: the page says so instead of buttons.
    context["your_vote"] = selectors.current_vote(user=request.user, votes=context["votes"])
    context["can_decide"] = (
        request.user.pk in context["approvers"].could_vote and not context["your_vote"]
    )
    context["may_see_queue"] = user_has_agent_perm(request.user, APPROVE, action.agent)
    context["undo"] = undo_panel(action=action, user=request.user)
    if outcome_unknown(action) and user_may_record_outcomes(request.user, action.agent):
        context["settle_form"] = settle_form or SettleForm()
        context["settle_from"] = settleable_from(action)
        context["settle_now"] = timezone.now() >= context["settle_from"]
    context["provenance"] = action_provenance(action=action)
    return render(request, "approvals/action.html", context, status=status)


@login_required
@require_POST
def settle(request: HttpRequest, action_id: uuid.UUID) -> HttpResponse:
    """An owner records how an action ended that its agent never reported."""
    action = selectors.action_get(user=request.user, action_id=action_id)  # 404 unless visible
    if not user_may_record_outcomes(request.user, action.agent):
        raise AgentAccessDenied("Only the agent's owners and admins record its actions' outcomes.")
    form = SettleForm(request.POST)
    if form.is_valid():
        outcome = form.cleaned_data["outcome"]
        try:
            action_settle(
                actor=Actor.for_user(request.user),
                action=action,
                outcome=outcome,
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Recorded: {OUTCOMES[outcome].lower()}.")
            return redirect("approvals:action", action_id=action.pk)
    # Refused: the page again, with what was typed, and why (on its field, and above).
    errors = [e for field_errors in form.errors.values() for e in field_errors]
    messages.error(request, "Not recorded: " + " ".join(errors))
    action.refresh_from_db()
    return _action_page(request, action, settle_form=form, status=422)
