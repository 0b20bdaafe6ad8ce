"""What the page behind a socket shows, from the socket's address.

A page opens ``/ws/live/?show=feed`` (the overview), ``?show=feed&agent=7`` (an agent's
page), ``?show=queue`` (the approval queue), ``?show=alerts`` (the alert list),
``?show=action&agent=7`` (the page of one of its actions), or
``?show=`` (a page with nothing live but the kill-switch banners): the socket joins only
the groups and forwards only the fragments of what its page shows, so a page is never
sent swaps for elements it does not have (htmx logs each such swap as
``htmx:oobErrorNoTarget``). A socket without ``show`` gets everything, as before pages
said what they show.

The queue shown as a compact list says ``show=queue-list`` (its items are rows, not
cards), and a filtered queue names its filters: ``&team=<slug>``, ``&risk=<tier>``,
``&agent=<id>``. The socket resolves team and risk to agent ids when it joins (and again
when permissions change), so an action of an agent outside the filters never reaches it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlencode

from oversight.live import groups
from oversight.live.selectors import Subscriptions

# Audiences (see publish.send) that are parts of a page; the others ("agents" for team
# and agent kill-switch banners, "everyone") belong on every page.
FEED = "feed"  # the action feeds: new rows and row updates
QUEUE = "queue"  # the approval queue's items, as cards
QUEUE_LIST = "queue-list"  # the approval queue's items, as rows of the compact list
QUEUES = frozenset({QUEUE, QUEUE_LIST})  # for people who may decide the action
ALERTS = "alerts"  # an alert opened, changed or was resolved
ACTION = "action"  # an action of the agent changed: its page reads itself again
REGIONS = frozenset({FEED, QUEUE, QUEUE_LIST, ALERTS, ACTION})


def address(regions: Iterable[str], *, agent_id: int | None = None, **filters: str) -> str:
    """The socket's query string for a page that shows ``regions``, narrowed to one
    agent or by ``team`` and ``risk`` (empty values are left out)."""
    params: dict[str, object] = {"show": ",".join(regions)}
    if agent_id is not None:
        params["agent"] = agent_id
    params.update({key: value for key, value in sorted(filters.items()) if value})
    return urlencode(params, safe=",")


@dataclass(frozen=True, slots=True)
class PageShows:
    regions: frozenset[str]
    agent_id: int | None = None  # a page about one agent: only its fragments
    team: str = ""  # a page about one team's agents (a filtered queue), by slug
    risk: str = ""  # a page about agents of one risk tier
    # The agents that team and risk name, looked up when the socket joins.
    agents: frozenset[int] | None = None

    @classmethod
    def parse(cls, query_string: bytes) -> PageShows:
        params = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
        if "show" not in params:
            return EVERYTHING
        regions = frozenset(
            region for value in params["show"] for region in value.split(",") if region in REGIONS
        )
        agent = params.get("agent", [""])[0]
        team, risk = params.get("team", [""])[0], params.get("risk", [""])[0]
        return cls(regions, int(agent) if agent.isdigit() else None, team, risk)

    @property
    def narrowed_by_agent_fields(self) -> bool:
        """Whether the agents it shows must be looked up (see ``with_agents``)."""
        return bool(self.team or self.risk)

    def with_agents(self, agent_ids: Iterable[int]) -> PageShows:
        return replace(self, agents=frozenset(agent_ids))

    def _about(self, agent_ids: Iterable[int]) -> bool:
        # agent_ids is a fragment's short list: membership tests, no set built per call.
        if self.agent_id is not None and self.agent_id not in agent_ids:
            return False
        return not (self.team or self.risk) or not self._resolved().isdisjoint(agent_ids)

    def _resolved(self) -> frozenset[int]:
        # Not looked up yet: nothing (it fails closed).
        return self.agents if self.agents is not None else frozenset()

    def shows(self, audience: str, agent_ids: Iterable[int]) -> bool:
        """Whether a fragment for ``audience`` about ``agent_ids`` has a place here."""
        if audience not in REGIONS:
            return True
        if audience not in self.regions:
            return False
        return self._about(agent_ids)

    def group_names(self, subscriptions: Subscriptions) -> set[str]:
        """The groups to join: the subscriptions' (what the person may see), narrowed to
        what the page shows. Feeds' groups also carry the alert and action changes."""
        feed, queue = subscriptions.feed, subscriptions.queue
        if self.agent_id is not None:
            feed, queue = feed & {self.agent_id}, queue & {self.agent_id}
        if self.narrowed_by_agent_fields:
            feed, queue = feed & self._resolved(), queue & self._resolved()
        names = {groups.EVERYONE}
        if self.regions & {FEED, ALERTS, ACTION}:
            names |= {groups.agent_feed(agent_id) for agent_id in feed}
        if self.regions & QUEUES:
            names |= {groups.agent_queue(agent_id) for agent_id in queue}
        return names


# A socket of a page from before pages said what they show: everything such pages had.
EVERYTHING = PageShows(frozenset({FEED, QUEUE, ALERTS}))
