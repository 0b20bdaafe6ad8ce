"""The one websocket endpoint: live fragments for the agents its user may see."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import get_user_model

from oversight.live import batches, broadcasts, publish
from oversight.live.fanout import LocalGroups, local_groups
from oversight.live.pages import QUEUES, PageShows
from oversight.live.selectors import Subscriptions, agents_named_by, live_subscriptions

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_DEACTIVATED = 4403


@database_sync_to_async
def _queue_changes(user_id: int, region: str, gained: frozenset[int], lost: frozenset[int]) -> str:
    return broadcasts.queue_items_for(user_id=user_id, region=region, gained=gained, lost=lost)


@database_sync_to_async
def _subscriptions(user_id: int, page: PageShows) -> tuple[bool, Subscriptions, PageShows]:
    # Read fresh from the database: the scope's user may be stale after a change, and an
    # agent may have moved to another team.
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not user.is_active:
        return False, Subscriptions(frozenset(), frozenset()), page
    if page.narrowed_by_agent_fields:
        page = page.with_agents(agents_named_by(team=page.team, risk=page.risk))
    return True, live_subscriptions(user=user), page


class LiveConsumer(AsyncWebsocketConsumer):
    """Sends htmx out-of-band fragments; never accepts commands from the browser.

    Group messages reach it through the process's one channel (oversight/live/fanout.py,
    ``forward``), not through its own: they wait in its outbox, in the order they came,
    and are checked against its subscriptions just before each is sent."""

    async def connect(self) -> None:
        publish.bind_event_loop()  # a server without lifespan events: its loop, as a request's
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user_id: int = user.pk
        self.page = PageShows.parse(self.scope.get("query_string", b""))
        self.joined: set[str] = set()
        self.subscriptions = Subscriptions(frozenset(), frozenset())
        self._joined_once = False
        self.groups_here: LocalGroups = local_groups()
        self._outbox: deque[dict[str, Any]] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._accepted = False
        # The groups first, then the handshake: once the browser sees its socket open,
        # nothing published after that is missed. What arrives meanwhile waits in the
        # outbox until the socket is accepted.
        if not await self._join():
            return
        await self.accept()
        self._accepted = True
        self._start_sending()

    async def _join(self) -> bool:
        """Join the groups this user's page needs now; False (and the socket closed) if
        the user is no longer active."""
        active, subscriptions, page = await _subscriptions(self.user_id, self.page)
        if not active:
            await self.close(code=CLOSE_DEACTIVATED)
            return False
        self.page = page
        wanted = self.page.group_names(subscriptions)
        # The new subscriptions first: a message of a group about to be left is then
        # checked against them and dropped, as the group's messages stop.
        before, self.subscriptions = self.subscriptions, subscriptions
        for name in wanted - self.joined:
            await self.groups_here.join(name, self)
        for name in self.joined - wanted:
            await self.groups_here.leave(name, self)
        self.joined = wanted
        if self._joined_once:
            await self._queue_catch_up(before.queue, subscriptions.queue)
        self._joined_once = True
        return True

    async def _queue_catch_up(self, before: frozenset[int], now: frozenset[int]) -> None:
        """Access changed (a grant, a revocation, a team's reviewers): the queue on this
        page gains the cards already held for agents it may now decide, and loses those it
        may not. The groups are joined first, so no card held meanwhile is missed; one held
        in that very instant may arrive twice (both copies decide the same action)."""
        for region in sorted(self.page.regions & QUEUES):
            gained = frozenset(a for a in now - before if self.page.shows(region, [a]))
            lost = frozenset(a for a in before - now if self.page.shows(region, [a]))
            if not gained and not lost:
                continue
            html = await _queue_changes(self.user_id, region, gained, lost)
            if html:
                await self.send(text_data=html)

    async def disconnect(self, code: int) -> None:
        for name in getattr(self, "joined", set()):
            await self.groups_here.leave(name, self)
        self.joined = set()
        sender = getattr(self, "_sender", None)
        if sender is not None and sender is not asyncio.current_task():
            sender.cancel()

    def forward(self, message: dict[str, Any]) -> None:
        """A group message for this socket (from LocalGroups.deliver, on the loop): sent
        after the ones before it, by one task at a time."""
        self._outbox.append(message)
        self._start_sending()

    def _start_sending(self) -> None:
        if self._accepted and self._sender is None and self._outbox:
            self._sender = asyncio.get_running_loop().create_task(self._send_outbox())

    async def _send_outbox(self) -> None:
        try:
            while self._outbox:
                await self.dispatch(self._outbox.popleft())
        except Exception:  # the socket has gone: its disconnect cleans up
            logger.debug("live socket stopped sending", exc_info=True)
            self._outbox.clear()
        finally:
            self._sender = None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Nothing is accepted from the browser; changes go through CSRF-protected views."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        """A batch goes straight to its handler. channels closes stale database
        connections before every handler, a hop to a thread and back: once per socket per
        message, it cost more than forwarding the fragments, which touches no database.
        Everything else takes the usual way."""
        if message["type"] == batches.MESSAGE_TYPE:
            await self.live_batch(message)
            return
        await super().dispatch(message)

    def _may_see(self, audience: str, agent_ids: list[int]) -> bool:
        """The permission check before each send, per fragment, and whether the page has
        a place for it: set lookups."""
        if not self.page.shows(audience, agent_ids):
            return False
        if audience in QUEUES:
            return not self.subscriptions.queue.isdisjoint(agent_ids)
        if audience == "everyone":
            return True
        # The feeds, alert changes and kill-switch banners of agents ("agents").
        return not self.subscriptions.feed.isdisjoint(agent_ids)

    async def live_batch(self, event: dict[str, Any]) -> None:
        """A window's fragments for one group (oversight/live/batches.py), in the order
        they were published; each forwarded only if this user may see it. Neighbours that
        the HTML parser reads alike share a frame (see batches.parse_context)."""
        frames: list[tuple[str, list[str]]] = []
        for audience, agent_ids, context, html in event["parts"]:
            if not self._may_see(audience, agent_ids):
                continue
            if frames and frames[-1][0] == context:
                frames[-1][1].append(html)
            else:
                frames.append((context, [html]))
        for _context, htmls in frames:
            await self.send(text_data="".join(htmls))

    async def live_fragment(self, event: dict[str, Any]) -> None:
        """One fragment, as the previous release sent them: kept so that sockets keep
        working while a deploy replaces the processes one by one."""
        if self._may_see(event["audience"], event.get("agent_ids") or []):
            await self.send(text_data=event["html"])

    async def live_resubscribe(self, event: dict[str, Any]) -> None:
        """Someone's permissions changed: re-read ours."""
        await self._join()
