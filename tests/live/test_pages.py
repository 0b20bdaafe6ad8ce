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
from oversight.live.pages import EVERYTHING, PageShows, address
from oversight.live.selectors import Subscriptions
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_refunds, hold_large_refunds, refund
from tests.live.sockets import ORIGIN, connect, in_thread, live_socket, session_cookie

QUIET = 0.3


async def heard_until_quiet(sockets: dict[str, Any]) -> dict[str, list[str]]:
    """What each socket was sent until it fell quiet for QUIET seconds; each is
    disconnected after."""
    heard: dict[str, list[str]] = {}
    for name, socket in sockets.items():
        heard[name] = []
        while not await socket.receive_nothing(timeout=QUIET):
            heard[name].append(await socket.receive_from())
        await socket.disconnect()
    return heard


def test_a_pages_address_says_what_it_shows() -> None:
    assert PageShows.parse(b"") is EVERYTHING  # a page of before: everything
    assert PageShows.parse(b"show=") == PageShows(frozenset())
    assert PageShows.parse(b"show=feed,alerts,bogus") == PageShows(frozenset({"feed", "alerts"}))
    assert PageShows.parse(b"show=feed&agent=7") == PageShows(frozenset({"feed"}), 7)
    assert PageShows.parse(b"show=queue&agent=x") == PageShows(frozenset({"queue"}))
    assert PageShows.parse(b"show=action,queue&agent=7") == PageShows(
        frozenset({"action", "queue"}), 7
    )


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
    assert PageShows(frozenset({"action"}), agent_id=2).group_names(mine) == {
        groups.EVERYONE,
        groups.agent_feed(2),
    }
    assert PageShows(frozenset({"action"}), agent_id=3).group_names(mine) == {groups.EVERYONE}
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
        (PageShows(frozenset({"action"}), 1), "action", [1], True),
        (PageShows(frozenset({"action"}), 1), "feed", [1], False),  # no feed on it
        (PageShows(frozenset({"feed"}), 1), "action", [1], False),
        (PageShows(frozenset({"action"}), 1), "action", [2], False),
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
        return await heard_until_quiet(sockets)

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


def test_a_filtered_queue_names_its_filters_and_view_in_its_address() -> None:
    assert (
        address(["queue"], agent_id=7, team="payments", risk="")
        == "show=queue&agent=7&team=payments"
    )
    parsed = PageShows.parse(b"show=queue-list&team=payments&risk=high")
    assert parsed == PageShows(frozenset({"queue-list"}), None, "payments", "high")
    assert parsed.narrowed_by_agent_fields


def test_a_filtered_page_shows_only_the_agents_its_filters_name() -> None:
    mine = Subscriptions(feed=frozenset({1, 2, 3}), queue=frozenset({1, 2, 3}))
    unresolved = PageShows(frozenset({"queue"}), team="payments")
    # Until the socket has looked the team up it shows nothing of any agent (fails closed).
    assert not unresolved.shows("queue", [1])
    assert unresolved.group_names(mine) == {groups.EVERYONE}
    payments = unresolved.with_agents([1, 3])
    assert payments.shows("queue", [1]) and not payments.shows("queue", [2])
    assert payments.shows("agents", [2])  # a team's kill-switch banner still belongs
    assert payments.group_names(mine) == {
        groups.EVERYONE,
        groups.agent_queue(1),
        groups.agent_queue(3),
    }
    assert not PageShows(frozenset({"queue-list"})).shows("queue", [1])  # rows, not cards


@pytest.mark.django_db(transaction=True)
def test_a_filtered_queue_hears_only_its_agents_and_the_list_hears_rows(
    agent: Any, other_agent: Any, admin_user: Any
) -> None:
    other_agent.environments = ["production"]  # made for staging, where nothing is held
    other_agent.save(update_fields=["environments"])
    for bot in (agent, other_agent):
        grant_refunds(bot)
        hold_large_refunds(bot)
    tokens = [
        token_create(actor=SYSTEM, agent=bot, environment="production")[0]
        for bot in (agent, other_agent)
    ]
    cookie = session_cookie(admin_user)  # an admin may decide both

    async def scenario() -> dict[str, list[str]]:
        sockets = {
            "payments cards": live_socket(
                ORIGIN, cookie, path="/ws/live/?show=queue&team=payments"
            ),
            "high-risk list": live_socket(
                ORIGIN, cookie, path="/ws/live/?show=queue-list&risk=high"
            ),
            "growth list": live_socket(
                ORIGIN, cookie, path="/ws/live/?show=queue-list&team=growth"
            ),
        }
        for socket in sockets.values():
            assert (await connect(socket))[0]
        for token in tokens:
            await in_thread(decide, token, refund(900))
        return await heard_until_quiet(sockets)

    heard = async_to_sync(scenario)()
    payments, high, growth = (
        "".join(heard[name]) for name in ("payments cards", "high-risk list", "growth list")
    )
    refund_bot, campaigner = "Refund bot", "Email campaigner"  # the agents' names
    assert "#approval-queue" in payments and "#approval-list" not in payments
    assert refund_bot in payments and campaigner not in payments
    assert "#approval-list" in high and "#approval-queue" not in high
    assert refund_bot in high and campaigner not in high  # the refund bot is high risk
    assert "#approval-list" in growth and campaigner in growth and refund_bot not in growth


@pytest.mark.django_db(transaction=True)
def test_an_actions_page_hears_that_an_action_of_its_agent_changed_and_nothing_else(
    owner: Any, agent: Any
) -> None:
    """The page of an action (show=action&agent=N) is told of each change of an action
    of that agent, by id (the page reads itself again only for its own), and is sent no
    feed rows or queue items, which it has no place for; the agent's page is not told."""
    from oversight.gateway.lifecycle import action_cancel

    grant_refunds(agent)
    hold_large_refunds(agent)
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    cookie = session_cookie(owner)

    async def scenario() -> dict[str, list[str]]:
        sockets = {
            "action page": live_socket(
                ORIGIN, cookie, path=f"/ws/live/?show=action&agent={agent.pk}"
            ),
            "agent page": live_socket(ORIGIN, cookie, path=f"/ws/live/?show=feed&agent={agent.pk}"),
        }
        for socket in sockets.values():
            assert (await connect(socket))[0]
        action = await in_thread(decide, token, refund(900))  # held: new, not a change
        await in_thread(action_cancel, token=token, action_id=action.pk)  # the agent gives up
        return {**await heard_until_quiet(sockets), "id": [str(action.pk)]}

    heard = async_to_sync(scenario)()
    (told,) = heard["action page"]
    assert f'id="action-changed" hx-swap-oob="true" data-action="{heard["id"][0]}"' in told
    assert "#action-feed" not in told and "approval-queue" not in told
    assert not any("action-changed" in message for message in heard["agent page"])
    assert any("#action-feed" in message for message in heard["agent page"])
