"""How a window's fragments become channel-layer messages (oversight/live/batches.py)."""

from __future__ import annotations

import pytest

from oversight.live.batches import MESSAGE_TYPE, Fragment, messages, parse_context

FEED, QUEUE, EVERYONE = "agent-1-feed", "agent-1-queue", "everyone"


def _feed(html: str, agent_id: int = 1) -> Fragment:
    return Fragment.of(f"agent-{agent_id}-feed", html=html, audience="feed", agent_ids=[agent_id])


@pytest.mark.parametrize(
    ("html", "context"),
    [
        ('<tbody hx-swap-oob="afterbegin:#action-feed"><tr id="action-1"></tr></tbody>', "table"),
        ('<tr id="action-1" hx-swap-oob="true">\n  <td></td>\n</tr>\n', "row"),
        ('<div hx-swap-oob="beforeend:#approval-queue">\n<article id="queue-1"></article>', "body"),
        ('\n<article id="queue-1" hx-swap-oob="delete"></article>', "body"),
        ('<TD class="x">', "cell"),
        ("just text", "body"),
    ],
)
def test_the_first_tag_says_how_the_browser_parses_a_fragment(html: str, context: str) -> None:
    assert parse_context(html) == context


def test_a_window_becomes_one_message_per_group_in_publish_order() -> None:
    window = [
        _feed("<tbody>a</tbody>"),
        Fragment.of(QUEUE, html="<div>q1</div>", audience="queue", agent_ids=[1]),
        _feed("<tbody>b</tbody>"),
        _feed("<tbody>c</tbody>", agent_id=2),
        Fragment.of(QUEUE, html="<article>q2</article>", audience="queue", agent_ids=[1]),
    ]

    sent = messages(window)

    assert [group for group, _message in sent] == [FEED, QUEUE, "agent-2-feed"]
    assert all(message["type"] == MESSAGE_TYPE for _group, message in sent)
    assert [message["parts"] for _group, message in sent] == [
        [["feed", [1], "table", "<tbody>a</tbody><tbody>b</tbody>"]],
        [["queue", [1], "body", "<div>q1</div><article>q2</article>"]],
        [["feed", [2], "table", "<tbody>c</tbody>"]],
    ]


def test_fragments_that_parse_differently_or_have_other_readers_stay_apart_in_order() -> None:
    """A row's update after new rows, and banners for different audiences on one group."""
    window = [
        _feed("<tbody>new</tbody>"),
        _feed('<tr id="action-1" hx-swap-oob="true"></tr>'),
        _feed("<tbody>newer</tbody>"),
        Fragment.of(EVERYONE, html="<div>team</div>", audience="feed", agent_ids=[1, 2]),
        Fragment.of(EVERYONE, html="<div>all</div>", audience="everyone", agent_ids=[]),
        Fragment.of(EVERYONE, html="<div>all again</div>", audience="everyone", agent_ids=[]),
    ]

    (feed, feed_message), (everyone, everyone_message) = messages(window)

    assert (feed, everyone) == (FEED, EVERYONE)
    assert [(p[2], p[3]) for p in feed_message["parts"]] == [
        ("table", "<tbody>new</tbody>"),
        ("row", '<tr id="action-1" hx-swap-oob="true"></tr>'),
        ("table", "<tbody>newer</tbody>"),
    ]
    assert everyone_message["parts"] == [
        ["feed", [1, 2], "body", "<div>team</div>"],
        ["everyone", [], "body", "<div>all</div><div>all again</div>"],
    ]


def test_an_empty_window_sends_nothing() -> None:
    assert messages([]) == []
