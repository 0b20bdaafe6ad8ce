"""One row of the live action feed as HTML, for the feed tables and their broadcasts.

Built with ``format_html`` rather than a template: a row is rendered for every decision
while dashboards are open, and this costs about a tenth of the template. The tables use
it through ``{% feed_cells action %}`` (templatetags/live.py), so a row looks the same
whether it came with the page or over the socket.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from html import escape
from typing import Any

from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from oversight.gateway.constants import LIFECYCLE_RANK, ActionStatus
from oversight.gateway.models import Action, deciding_reasons

_SOME_ID = uuid.UUID(int=0)


@lru_cache(maxsize=64)
def _action_url_parts(script_prefix: str) -> tuple[str, str]:
    """An action's URL around its id: a row is built for every decision, and resolving
    the URL pattern each time cost as much as the rest of the row."""
    head, _, tail = reverse("approvals:action", args=[_SOME_ID]).partition(str(_SOME_ID))
    return head, tail


@lru_cache(maxsize=4096)
def _agent_url(script_prefix: str, slug: str) -> str:
    return reverse("agents:detail", args=[slug])


_ROW = (
    '<tr id="action-{}"{} data-rank="{}">\n'
    '  <td><time datetime="{}">{}</time></td>\n'
    '  <td><a href="{}">{}</a></td>\n'
    '  <td><a href="{}" class="mono">{}</a><div class="muted mono small">{}</div></td>\n'
    '  <td><span class="pill status-{}">{}</span></td>\n'
    '  <td class="muted">{}</td>\n'
    "</tr>\n"
)
_SWAP = ' hx-swap-oob="true" data-oob-if-present'
_RESOURCE_CHARS = 48
_WHY_CHARS = 80


def _short(text: str) -> str:
    """As ``Truncator(text).chars(48)``, which most resources (short, ASCII) skip."""
    if len(text) <= _RESOURCE_CHARS and text.isascii():
        return text
    return Truncator(text).chars(_RESOURCE_CHARS)


def feed_cells(action: Action, *, swap: bool = False) -> SafeString:
    """The ``<tr>``; ``swap``: it replaces the row of the same id (an update), if the
    page shows that row (a feed holds only the newest: see static/js/oversight.js,
    oob-if-present) and the update is not older than it: two processes may publish
    changes of one action (the server a report, a worker or another server a vote or an
    expiry), and their messages can cross, so a row carries its action's lifecycle rank
    (``data-rank``). Every value is escaped as ``format_html`` would (``html.escape``,
    which Django's ``escape`` is), without its lazy-string wrappers: this runs for every
    decision."""
    created = timezone.localtime(action.created_at)
    why = _why(action)
    prefix = get_script_prefix()
    return mark_safe(  # noqa: S308 - every value below is escaped or ours
        _ROW.format(
            action.pk,
            _SWAP if swap else "",
            _rank(action),
            created.isoformat(),
            created.strftime("%H:%M:%S"),
            escape(_agent_url(prefix, action.agent.slug)),
            escape(action.agent.name),
            escape(str(action.pk).join(_action_url_parts(prefix))),
            escape(action.action),
            escape(_short(action.resource)),
            escape(action.status),
            escape(_status_words(action)),
            escape(str(why)),
        )
    )


def _started(action: Action) -> bool:
    """Approved, and the agent has claimed its run: it may be running."""
    return action.status == ActionStatus.APPROVED and action.started_at is not None


def _rank(action: Action) -> float:
    """The action's lifecycle rank; an approved action the agent started is further along
    than one it has not, so a vote's update arriving after the start does not undo it."""
    return LIFECYCLE_RANK[action.status] + (0.5 if _started(action) else 0)


def _status_words(action: Action) -> str:
    words = str(action.get_status_display())
    return f"{words}, started" if _started(action) else words


def _why(action: Action) -> str:
    """What stopped a cancelled action (a kill switch, a rewind, a changed tool), rather
    than the rule that held it. Otherwise the name of the reason that decided: the first
    that did not simply allow (a hold, a forbid rule, a limit, a changed tool...), else
    the first (the grant)."""
    if action.status == ActionStatus.CANCELLED and action.error:
        return Truncator(action.error).chars(_WHY_CHARS)
    reasons: Any = action.reasons
    found = deciding_reasons(reasons) or [r for r in reasons or () if isinstance(r, dict)]
    return str(found[0].get("name", "")) if found else ""


def feed_fragment(action: Action, *, created: bool) -> SafeString:
    """What the sockets get: a new action goes to the top of the overview's feed and of
    its agent's feed (each page has one of them); an update replaces the row by id. The
    htmx ws extension swaps each top-level element by its own hx-swap-oob, and htmx swaps
    a copy into every target a comma-separated selector finds, so a new row is sent once
    for both feeds: every socket gets it, and its bytes are compressed per socket."""
    if not created:
        return feed_cells(action, swap=True)
    return format_html(
        '<tbody hx-swap-oob="afterbegin:#action-feed,#agent-{}-feed">{}</tbody>\n',
        action.agent_id,
        feed_cells(action),
    )
