"""What the page behind a socket shows, from the socket's address.

A page opens ``/ws/live/?show=feed`` (the overview), ``?show=feed&agent=7`` (an agent's
page), ``?show=queue`` (the approval queue), ``?show=alerts`` (the alert list), or
``?show=`` (a page with nothing live but the kill-switch banners): the socket joins only
the groups and forwards only the fragments of what its page shows, so a page is never
sent swaps for elements it does not have (htmx logs each such swap as
``htmx:oobErrorNoTarget``). A socket without ``show`` gets everything, as before pages
said what they show.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qs

from oversight.live import groups
from oversight.live.selectors import Subscriptions

# Audiences (see publish.send) that are parts of a page; the others ("agents" for team
# and agent kill-switch banners, "everyone") belong on every page.
FEED = "feed"  # the action feeds: new rows and row updates
QUEUE = "queue"  # the approval queue's items
ALERTS = "alerts"  # an alert opened, changed or was resolved
REGIONS = frozenset({FEED, QUEUE, ALERTS})


@dataclass(frozen=True, slots=True)
class PageShows:
    regions: frozenset[str]
    agent_id: int | None = None  # a page about one agent: only its fragments

    @classmethod
    def parse(cls, query_string: bytes) -> PageShows:
        params = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
        if "show" not in params:
            return EVERYTHING
        regions = frozenset(
            region for value in params["show"] for region in value.split(",") if region in REGIONS
        )
        agent = params.get("agent", [""])[0]
        return cls(regions, int(agent) if agent.isdigit() else None)

    def shows(self, audience: str, agent_ids: Iterable[int]) -> bool:
        """Whether a fragment for ``audience`` about ``agent_ids`` has a place here."""
        if audience not in REGIONS:
            return True
        if audience not in self.regions:
            return False
        return self.agent_id is None or self.agent_id in agent_ids

    def group_names(self, subscriptions: Subscriptions) -> set[str]:
        """The groups to join: the subscriptions' (what the person may see), narrowed to
        what the page shows. Feeds' groups also carry the alert changes."""
        feed, queue = subscriptions.feed, subscriptions.queue
        if self.agent_id is not None:
            feed, queue = feed & {self.agent_id}, queue & {self.agent_id}
        names = {groups.EVERYONE}
        if self.regions & {FEED, ALERTS}:
            names |= {groups.agent_feed(agent_id) for agent_id in feed}
        if QUEUE in self.regions:
            names |= {groups.agent_queue(agent_id) for agent_id in queue}
        return names


EVERYTHING = PageShows(REGIONS)
