"""Every main page stays quiet in the console while live events arrive: each page's socket
is sent only the parts it shows (oversight/live/pages.py), and an update of an element the
page does not show is left out as expected (static/js/oversight.js, oob-if-present), so
htmx never reports a swap without a target (htmx:oobErrorNoTarget)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from oversight.agents.services import token_create
from oversight.approvals.services import approval_vote
from oversight.gateway.models import Action
from oversight.gateway.tasks import expire_due_actions
from oversight.killswitch.selectors import Target
from oversight.killswitch.services import killswitch_engage, killswitch_release
from oversight.live import groups
from oversight.monitoring.services import Finding, alert_raise
from tests.browser.ui import DESKTOP, RECORD_SOCKET_OPEN, World, log_in, make_world
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, expire, refund
from tests.servers import wait_until_the_server_listens

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
FEED_ROWS = 25  # a feed's first page (approvals.selectors.recent_actions)

# Who opens which pages (by World.pages() name) while the events arrive.
# The admin opens every page.
OPENED = {
    "rita": ["overview", "approvals", "action", "agent", "alerts"],
    "alice": ["agent", "policy", "team", "recertification-agent", "alert"],
}


@pytest.fixture
def world(agent: Any, other_agent: Any, reviewer: Any, auditor: Any, admin_user: Any) -> World:
    world = make_world(agent, reviewer, auditor)
    for _ in range(FEED_ROWS):  # the world's first actions drop off the feeds
        decide(world.token, refund(5))
    return world


@pytest.fixture
def pages(browser: Browser, live_url: str, world: World) -> Iterator[dict[str, Page]]:
    """Every main page for the admin, and some for the reviewer and the owner, each
    signed in and with its socket open; what their consoles say is in ``page.errors``."""
    opened: dict[str, Page] = {}
    contexts = []
    paths = world.pages()
    for username, names in {**OPENED, "ada": list(paths)}.items():
        context = browser.new_context(viewport=DESKTOP)
        context.add_init_script(RECORD_SOCKET_OPEN)
        contexts.append(context)
        first = context.new_page()
        log_in(first, live_url, username)
        first.close()
        for name in names:
            page = context.new_page()
            page.errors = []  # type: ignore[attr-defined]
            page.on("console", lambda m, p=page: m.type == "error" and p.errors.append(m.text))
            page.on("pageerror", lambda e, p=page: p.errors.append(str(e)))
            page.goto(f"{live_url}{paths[name]}")
            page.wait_for_function("window.__socketOpen === true")
            opened[f"{username} {name}"] = page
    yield opened
    for context in contexts:
        context.close()


@pytest.mark.slow
def test_no_page_logs_an_htmx_error_while_live_events_arrive(
    live_url: str, world: World, pages: dict[str, Page], reviewer: Any, other_agent: Any
) -> None:
    assert settings.REDIS_URL, "bin/test provides Redis for the PostgreSQL run"
    agent = world.agent
    for group in (groups.agent_feed(agent.pk), groups.agent_queue(agent.pk), groups.EVERYONE):
        wait_until_the_server_listens(group)
    _token, raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    _other, other_raw = token_create(actor=SYSTEM, agent=other_agent, environment="staging")

    with httpx.Client(
        base_url=live_url, headers={"Authorization": f"Bearer {raw}"}, timeout=10
    ) as api:
        allowed = api.post("/api/v1/actions", json=refund(10)).json()
        api.post("/api/v1/actions", json=refund(10, charges=("ch_1", "ch_2")))  # denied
        held = api.post("/api/v1/actions", json=refund(700)).json()
        doomed = api.post("/api/v1/actions", json=refund(800)).json()
        api.post(f"/api/v1/actions/{allowed['id']}/result", json={"outcome": "succeeded"})
        approval_vote(user=reviewer, action_id=held["id"], vote="approve", comment="")
        api.post(f"/api/v1/actions/{held['id']}/result", json={"outcome": "failed"})
        # An update of a row no page shows any more: the world's first action.
        oldest = Action.objects.filter(agent=agent).order_by("created_at").first()
        assert oldest is not None
        api.post(f"/api/v1/actions/{oldest.pk}/result", json={"outcome": "succeeded"})
        approval_vote(user=reviewer, action_id=world.held.pk, vote="deny", comment="no")
        expire(Action.objects.get(pk=doomed["id"]))
        expire_due_actions.apply()
    httpx.post(  # another team's agent: on the admin's overview only
        f"{live_url}/api/v1/actions",
        json={"action": "email.send", "resource": "segment:all"},
        headers={"Authorization": f"Bearer {other_raw}"},
    )
    with transaction.atomic():
        alert_raise(
            finding=Finding(agent.pk, "volume", "warning", "v", "Volume up", {"n": 1}),
            now=timezone.now(),
        )
    target = Target("team", team=agent.team)
    killswitch_engage(actor=SYSTEM, target=target, reason="console drill")
    killswitch_release(actor=SYSTEM, target=target, reason="over")
    killswitch_engage(actor=SYSTEM, target=Target("global"), reason="all stop")

    # The events arrived (the pages are live, not merely quiet)...
    overview = pages["ada overview"]
    expect(overview.locator("#action-feed tr")).to_have_count(FEED_ROWS + 5)
    expect(overview.locator(f"#action-feed #action-{oldest.pk}")).to_have_count(0)
    expect(overview.locator(f"#action-feed #action-{held['id']}")).to_contain_text("Failed")
    expect(pages["rita approvals"].locator(f"#queue-{world.held.pk}")).to_have_count(0)
    expect(pages["ada alerts"].locator("#alert-table")).to_contain_text("Volume up")
    for page in pages.values():
        expect(page.locator("#killswitch-banners")).to_contain_text("all stop")
    overview.wait_for_timeout(1000)  # and anything still on its way
    # ...and no console has an error.
    errors = {name: page.errors for name, page in pages.items() if page.errors}
    assert not errors, errors
