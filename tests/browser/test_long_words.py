"""A long word (a name or a reason without spaces, as pasted) breaks inside its place on
the page: the kill switch's banner took a 3,000-character reason on one line across
every page, and a rule named with 120 characters made a release's page 1,806 px wide.
And a short word never breaks: letting every cell break anywhere made tables squeeze
columns below their words ("17 / 3" for event 173, "action.decide / d")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from oversight.agents.services import agent_update
from oversight.core.templatetags.display import LONG_WORD
from oversight.killswitch.selectors import Target
from oversight.killswitch.services import killswitch_engage
from oversight.policy.models import Rule
from oversight.policy.services import policy_object_create
from tests.browser.test_approvals_flow import open_as  # noqa: F401 (fixture)
from tests.conftest import SYSTEM

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# The words of the page's table cells (split after hyphens too, where text may wrap) that
# the browser laid out on more than one line.
BROKEN_WORDS = """(longest) => {
  const broken = [];
  for (const td of document.querySelectorAll("td")) {
    const walker = document.createTreeWalker(td, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.textContent.matchAll(/[^\\s-]+-?/g)) {
        if (m[0].length > longest) continue;
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const rects = [...range.getClientRects()].filter(r => r.width);
        const tops = new Set(rects.map(r => Math.round(r.top)));
        if (tops.size > 1) broken.push(m[0]);
      }
    }
  }
  return broken;
}"""


def test_long_words_stay_within_the_page(
    open_as: Callable[[str, str], Page],  # noqa: F811
    live_url: str,
    agent: Any,
    admin_user: Any,
) -> None:
    name = "n" * 120
    policy_object_create(
        actor=SYSTEM, obj=Rule(agent=agent, name=name, effect="forbid", action="payments.void")
    )
    version = agent.releases.order_by("-version").values_list("version", flat=True).first()
    reason = "r" * 3000
    killswitch_engage(actor=SYSTEM, target=Target(scope="agent", agent=agent), reason=reason)

    page = open_as("alice", f"/agents/{agent.slug}/")
    expect(page.locator(".banner.killswitch")).to_be_visible()
    for path in (
        f"/agents/{agent.slug}/",
        f"/agents/{agent.slug}/releases/{version}/",
        f"/agents/{agent.slug}/policy/",
        "/incidents/",
    ):
        page.goto(f"{live_url}{path}")
        expect(page.locator(".banner.killswitch")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, f"{path} is {width} px wide"
        assert page.locator(".banner.killswitch").bounding_box()["height"] < 300, path
        assert page.evaluate(BROKEN_WORDS, LONG_WORD) == [], path
    # A wide table: seq, time, actor, verb, target, hashes.
    page = open_as(admin_user.username, "/audit/")
    assert page.locator("#audit-results td").count() > 10
    assert page.evaluate(BROKEN_WORDS, LONG_WORD) == []
    # On a phone, the agent filters' options (a name of 60 characters) stay within it.
    agent_update(actor=SYSTEM, agent=agent, name="Refund bot for the European ledger " * 2)
    page.set_viewport_size({"width": 390, "height": 800})
    page.reload()
    expect(page.locator("select[name=agent]").first).to_contain_text("European ledger")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
