"""A socket forwards only what its page shows (oversight/live/pages.py): a page is never
sent swaps for elements it lacks, which htmx would log as htmx:oobErrorNoTarget."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync

from oversight.agents.services import agent_access_grant, token_create
from oversight.killswitch.selectors import Target
from oversight.killswitch.services import killswitch_engage
from oversight.live import groups
from oversight.live.pages import EVERYTHING, PageShows
from oversight.live.selectors import Subscriptions
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, hold_large_refunds, refund
from tests.live.sockets import ORIGIN, connect, in_thread, live_socket, session_cookie

QUIET = 0.3


def test_a_pages_address_says_what_it_shows() -> None:
    assert PageShows.parse(b"") is EVERYTHING  # a page of before: everything
    assert PageShows.parse(b"show=") == PageShows(frozenset())
    assert PageShows.parse(b"show=feed,alerts,bogus") == PageShows(frozenset({"feed", "alerts"}))
    assert PageShows.parse(b"show=feed&agent=7") == PageShows(frozenset({"feed"}), 7)
    assert PageShows.parse(b"show=queue&agent=x") == PageShows(frozenset({"queue"}))


def test_it_joins_only_the_groups_of_what_it_shows() -> None:
    mine = Subscriptions(feed=frozenset({1, 2}), queue=frozenset({2}))
    assert PageShows(frozenset()).group_names(mine) == {groups.EVERYONE}
    assert PageShows(frozenset({"queue"})).group_names(mine) == {
        groups.EVERYONE,
        groups.agent_queue(2),
    }
    assert PageShows(frozenset({"feed"}), agent_id=1).group_names(mine) == {
        groups.EVERYONE,
        groups.agent_feed(1),
    }
    assert EVERYTHING.group_names(mine) == {
        groups.EVERYONE,
        groups.agent_feed(1),
        groups.agent_feed(2),
        groups.agent_queue(2),
    }


@pytest.mark.parametrize(
    ("page", "audience", "agents", "shown"),
    [
        (PageShows(frozenset()), "feed", [1], False),
        (PageShows(frozenset()), "agents", [1], True),  # a team's kill-switch banner
        (PageShows(frozenset()), "everyone", [], True),
        (PageShows(frozenset({"feed"}), 1), "feed", [1], True),
        (PageShows(frozenset({"feed"}), 1), "feed", [2], False),  # another agent's row
        (PageShows(frozenset({"feed"})), "alerts", [1], False),
        (PageShows(frozenset({"queue"})), "queue", [3], True),
    ],
)
def test_it_forwards_a_fragment_only_where_it_has_a_place(
    page: PageShows, audience: str, agents: list[int], shown: bool
) -> None:
    assert page.shows(audience, agents) is shown


@pytest.mark.django_db(transaction=True)
def test_sockets_of_three_pages_hear_what_each_page_shows(
    owner: Any, agent: Any, other_agent: Any, admin_user: Any
) -> None:
    grant_refunds(agent)
    hold_large_refunds(agent)
    agent_access_grant(actor=SYSTEM, agent=agent, user=owner, level="reviewer")
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    cookie = session_cookie(owner)

    async def scenario() -> dict[str, list[str]]:
        sockets = {
            "policy page": live_socket(ORIGIN, cookie, path="/ws/live/?show="),
            "queue": live_socket(ORIGIN, cookie, path="/ws/live/?show=queue"),
            "other agent": live_socket(
                ORIGIN, cookie, path=f"/ws/live/?show=feed&agent={other_agent.pk}"
            ),
            "this agent": live_socket(ORIGIN, cookie, path=f"/ws/live/?show=feed&agent={agent.pk}"),
        }
        for socket in sockets.values():
            assert (await connect(socket))[0]
        await in_thread(decide, token, refund(900))  # held: a feed row and a queue item
        target = Target("team", team=agent.team)
        await in_thread(killswitch_engage, actor=SYSTEM, target=target, reason="drill")
        heard: dict[str, list[str]] = {}
        for name, socket in sockets.items():
            heard[name] = []
            while not await socket.receive_nothing(timeout=QUIET):
                heard[name].append(await socket.receive_from())
            await socket.disconnect()
        return heard

    heard = async_to_sync(scenario)()

    def kinds(messages: list[str]) -> set[str]:
        found = set()
        for message in messages:
            found |= {"row"} if "#action-feed" in message else set()
            found |= {"queue item"} if "#approval-queue" in message else set()
            found |= {"banner"} if "#killswitch-banners" in message else set()
        return found

    assert kinds(heard["policy page"]) == {"banner"}
    assert kinds(heard["queue"]) == {"queue item", "banner"}
    assert kinds(heard["this agent"]) == {"row", "banner"}
    assert kinds(heard["other agent"]) == {"banner"}  # banners belong on every page
