"""What happened, as htmx out-of-band fragments, rendered once per event.

Called after commit with ids; reading the rows again makes a late or repeated call
harmless (it sends the current state).
"""

from __future__ import annotations

import uuid

from django.template.loader import render_to_string
from django.utils.html import format_html

from oversight.agents.models import Agent
from oversight.gateway.constants import ActionStatus
from oversight.gateway.models import Action
from oversight.killswitch.models import KillSwitch, Scope
from oversight.live import groups, pages, publish, rows

# A held action leaves the queues when it is decided, expires or is cancelled; later
# changes (its result) concern only the feeds.
_LEFT_THE_QUEUE = frozenset(
    {ActionStatus.APPROVED, ActionStatus.REJECTED, ActionStatus.EXPIRED, ActionStatus.CANCELLED}
)


_QUEUE_VIEWS = (
    (pages.QUEUE, "approvals/_queue_item.html"),
    (pages.QUEUE_LIST, "approvals/_queue_row.html"),
)


def _queue_context(action: Action) -> dict[str, object]:
    from oversight.approvals.selectors import queue_item_context

    return queue_item_context(action)


# An action's page reads its parts again when this lands naming its action
# (static/js/oversight.js): its status, its facts, its story.
_ACTION_CHANGED = '<div id="action-changed" hx-swap-oob="true" data-action="{}" hidden></div>'


def action_changed(action_id: uuid.UUID, *, created: bool, action: Action | None = None) -> None:
    """``action``: the row as just committed, with its agent, owner and team loaded (the
    decision passes it, saving a read); otherwise it is read again."""
    if action is None:
        action = (
            Action.objects.select_related("agent__owner", "agent__team")
            .filter(pk=action_id)
            .first()
        )
    if action is None:
        return
    agent_ids = [action.agent_id]
    feed = groups.agent_feed(action.agent_id)
    row = rows.feed_fragment(action, created=created)
    publish.send(feed, html=row, audience=pages.FEED, agent_ids=agent_ids)
    if not created:  # a page can only be open on an action that was
        changed = format_html(_ACTION_CHANGED, action.pk)
        publish.send(feed, html=changed, audience=pages.ACTION, agent_ids=agent_ids)
    queue = groups.agent_queue(action.agent_id)
    if action.status == ActionStatus.PENDING:
        # The queue's two views (cards, the compact list's rows) from one context; each
        # page is sent the one it shows (oversight/live/pages.py).
        context = {**_queue_context(action), "oob": "new" if created else "update"}
        for audience, template in _QUEUE_VIEWS:
            html = render_to_string(template, context)
            publish.send(queue, html=html, audience=audience, agent_ids=agent_ids)
    elif action.status in _LEFT_THE_QUEUE:
        gone = render_to_string("approvals/_queue_gone.html", {"action": action})
        for audience, _template in _QUEUE_VIEWS:
            publish.send(queue, html=gone, audience=audience, agent_ids=agent_ids)


# Alert lists re-read themselves when this lands (static/js/oversight.js): an alert row
# depends on the list's filters, so the page asks for its own table.
_ALERTS_CHANGED = '<div id="alerts-changed" hx-swap-oob="true" hidden></div>'


def alert_changed(agent_id: int) -> None:
    """An alert of the agent opened, changed or was resolved."""
    publish.send(
        groups.agent_feed(agent_id), html=_ALERTS_CHANGED, audience="alerts", agent_ids=[agent_id]
    )


def killswitch_changed(switch_id: int) -> None:
    switch = KillSwitch.objects.select_related("team", "agent").filter(pk=switch_id).first()
    if switch is None:
        return
    html = render_to_string("killswitch/_banner_oob.html", {"switch": switch})
    if switch.scope == Scope.GLOBAL:
        publish.send(groups.EVERYONE, html=html, audience="everyone")
        return
    agents = Agent.objects.all()
    agents = (
        agents.filter(pk=switch.agent_id)
        if switch.agent_id
        else agents.filter(team_id=switch.team_id)
    )
    agent_ids = list(agents.values_list("pk", flat=True))
    publish.send(groups.EVERYONE, html=html, audience="agents", agent_ids=agent_ids)


def queue_items_for(
    *, user_id: int, region: str, gained: frozenset[int], lost: frozenset[int]
) -> str:
    """One person's access changed while their queue is open: the held actions of the
    agents they may now decide arrive as new cards (or rows, for the compact list's
    ``region``), those of agents they may no longer decide leave. Rendered for that one
    socket (a permission change is rare)."""
    from django.contrib.auth import get_user_model

    from oversight.approvals.selectors import approval_queue, queue_item_contexts

    template = dict(_QUEUE_VIEWS)[region]
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    parts: list[str] = []
    if user is not None and gained:
        arrived = [a for a in approval_queue(user=user) if a.agent_id in gained]
        for context in queue_item_contexts(arrived, detail=region == pages.QUEUE):
            parts.append(render_to_string(template, {**context, "oob": "new"}))
    if lost:
        left = Action.objects.filter(status=ActionStatus.PENDING, agent_id__in=lost)
        for action in left.only("pk"):
            parts.append(render_to_string("approvals/_queue_gone.html", {"action": action}))
    return "".join(parts)
