"""On a 390 px phone no page scrolls sideways, for every person who may open it: wide
tables scroll inside their own box, the registry, the audit log, alerts and incidents read
as cards, the live feed reads as a list, the top bar wraps, and the kill-switch menu fits
the screen. Screenshots of each page, phone and desktop, go to
/tmp/oversight-shots/phone-*.png and desktop-*.png."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from oversight.accounts.services import personal_token_create
from oversight.agents.models import Agent
from oversight.agents.services import token_create, token_revoke
from oversight.audit import verbs
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.audit.trust_services import verification_run_here
from oversight.gateway.lifecycle import ResultInput, action_report_result
from oversight.gateway.models import Action
from oversight.incidents.analysis.report import analyse
from oversight.incidents.models import AnalysisState, Incident, TriggerKind
from oversight.incidents.services import incident_open
from oversight.monitoring.detectors import EVIDENCE_FIELDS, evidence_item
from oversight.monitoring.rollups import rollup_minutes
from oversight.monitoring.services import Finding, alert_raise
from oversight.policy.services import policy_object_delete
from oversight.releases.models import Release, Stage
from oversight.releases.rollouts import rollout_start
from oversight.releases.services import release_rollback
from tests.browser.ui import (
    CARDS,
    DESKTOP,
    OUT_OF_REACH,
    PHONE,
    SHOTS,
    World,
    log_in,
    make_world,
    shot,
)
from tests.conftest import SYSTEM
from tests.gateway.helpers import (
    decide,
    forbid_big_refunds,
    forbid_many_charges,
    grant_reversible_refunds,
    limit_create,
    refund,
)
from tests.incidents.helpers import bulk_refund, mix, place, small_refund, traffic

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PEOPLE = ["ada", "alice", "carol", "rita", "aaron"]  # admin, owner, teammate, reviewer, auditor

# What sticks out of the page, leaving out what scrolls inside a box of its own.
_WIDER = """(limit) => {
  const boxed = (e) => {
    for (let p = e.parentElement; p; p = p.parentElement) {
      if (["auto", "scroll", "hidden"].includes(getComputedStyle(p).overflowX)) return true;
    }
    return false;
  };
  return Array.from(document.querySelectorAll("body *"))
    .filter((e) => e.getBoundingClientRect().right > limit + 1 && !boxed(e))
    .map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}px`)
    .slice(0, 8);
}"""


@pytest.fixture
def world(agent: Any, other_agent: Any, reviewer: Any, auditor: Any, admin_user: Any) -> World:
    return make_world(agent, reviewer, auditor)


def assert_no_sideways_scroll(page: Page, where: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{where} is {width}px wide: {page.evaluate(_WIDER, 390)}"


@pytest.mark.slow
def test_no_page_scrolls_sideways_on_a_phone_for_anyone(
    browser: Browser, live_url: str, world: World, teammate: Any
) -> None:
    pages = {**world.pages(), "agent-edit": f"/agents/{world.agent.slug}/edit/"}
    seen: dict[str, list[str]] = {}
    for person in PEOPLE:
        context = browser.new_context(viewport=PHONE)
        page = context.new_page()
        log_in(page, live_url, person)
        for name, path in pages.items():
            response = page.goto(f"{live_url}{path}")
            assert response is not None
            if response.status in (403, 404):  # not a page this person sees
                continue
            assert response.status == 200, (person, name, response.status)
            seen.setdefault(person, []).append(name)
            assert_no_sideways_scroll(page, f"{name} as {person}")
            if person == "ada":
                shot(page, f"phone-{name}")
        # The kill switch's menu, open, fits too.
        menu = page.locator("#ks-menu summary")
        if menu.count():
            menu.click()
            expect(page.get_by_label("Reason")).to_be_visible()
            assert_no_sideways_scroll(page, f"the kill-switch menu as {person}")
            box = page.locator("#ks-menu .ks-form").bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
            if person == "ada":
                shot(page, "phone-killswitch-menu")
        context.close()
    # Everyone saw the pages their role opens (the check above ran on them).
    assert "audit" in seen["ada"] and "audit" in seen["aaron"] and "audit" not in seen["alice"]
    for person in PEOPLE:
        assert {"overview", "agents", "agent", "approvals", "alerts"} <= set(seen[person])


def test_no_page_scrolls_sideways_on_a_tablet(
    browser: Browser, live_url: str, world: World
) -> None:
    """Between phone and desktop the top bar wraps and tables scroll inside their cards."""
    for width in (768, 900):
        context = browser.new_context(viewport={"width": width, "height": 1000})
        page = context.new_page()
        log_in(page, live_url, "ada")
        for name, path in world.pages().items():
            page.goto(f"{live_url}{path}")
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, (
                f"{name} is {scroll}px wide at {width}: {page.evaluate(_WIDER, width)}"
            )
        context.close()


def test_desktop_screenshots(browser: Browser, live_url: str, world: World) -> None:
    """For a person to look at: the same pages at 1280 px."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    log_in(page, live_url, "ada")
    for name, path in world.pages().items():
        page.goto(f"{live_url}{path}")
        shot(page, f"desktop-{name}")
    context.close()


# The shown cells of a table that have no column's name over them, but for the one with the
# link to the row's own page (its card's title) and those of buttons (a row's actions).
_UNLABELLED = """(table) => Array.from(table.querySelectorAll("tbody td:not([data-label])"))
  .filter((td) => td.offsetParent && !td.querySelector("a.row-title, button, .button"))
  .map((td) => td.textContent.trim().slice(0, 40))"""


def assert_stacked(page: Page, selector: str, name: str) -> int:
    """Every table ``selector`` finds reads as cards (rows shown, no header row, nothing
    scrolled or off the screen), each shown cell under its column's name. Returns how many
    tables it found."""
    tables = page.locator(selector)
    for index in range(tables.count()):
        table = tables.nth(index)
        cards = table.evaluate(CARDS)
        assert cards["cells"] and not cards["header"], (name, index, cards)
        assert not cards["scrolls"] and not cards["outside"], (name, index, cards)
        assert table.evaluate(_UNLABELLED) == [], (name, index, table.evaluate(_UNLABELLED))
        labels = table.locator("td[data-label]").evaluate_all(
            "tds => tds.map((td) => getComputedStyle(td, '::before').content)"
        )
        assert labels and all(label not in ("none", "normal") for label in labels), (name, index)
    return tables.count()


# The lists read row by row on a phone: each row a card, every cell on the screen.
CARD_LISTS = {
    "agents": "#agent-table table",
    "audit": "#audit-results table",
    "alerts": "#alert-table table",
    "incidents": "#incident-table",
}


def test_the_main_pages_fit_a_phone_and_the_key_lists_read_as_cards(
    page: Page, live_url: str, world: World
) -> None:
    """One person, one page, every page the nav leads to and the pages under them: none
    scrolls sideways at 390 px, and the registry, the audit log, alerts and incidents
    show each row as a card rather than a table to scroll; at 1280 px they are tables."""
    slug, team = world.agent.slug, world.agent.team.slug
    run = verification_run_here(started_by="ada")
    assert run is not None
    event = AuditEvent.objects.order_by("-seq").first()
    rule = world.agent.rules.first()
    assert event is not None and rule is not None
    pages = {
        **world.pages(),
        "agent-edit": f"/agents/{slug}/edit/",
        "agent-history": f"/agents/{slug}/history/",
        "rule-edit": f"/agents/{slug}/policy/rule/{rule.pk}/edit/",
        "approvals-list": "/approvals/?view=list",
        "audit-event": f"/audit/events/{event.seq}/",
        "verification": f"/audit/verifications/{run.pk}/",
        "team-notifications": f"/teams/{team}/notifications/",
        "team-periods": f"/teams/{team}/recertification/",
        "tokens": "/settings/tokens/",
        "api-docs": "/api/v1/docs",
    }
    page.set_viewport_size(PHONE)
    log_in(page, live_url, "ada")
    for name, path in pages.items():
        response = page.goto(f"{live_url}{path}")
        assert response is not None and response.status == 200, (name, response)
        assert_no_sideways_scroll(page, name)

    for name, table in CARD_LISTS.items():
        page.goto(f"{live_url}{pages[name]}")
        cards = page.locator(table).evaluate(CARDS)
        assert cards["cells"] and not cards["header"], (name, cards)
        assert not cards["scrolls"] and not cards["outside"], (name, cards)
        if name == "audit":
            # Its cards leave out the request id and the hash (the event's own page, a tap
            # away, has both); the event's number, its link, stays.
            first_event = page.locator("#audit-results tbody tr").first
            expect(first_event.locator("td").first.get_by_role("link")).to_be_visible()
            expect(first_event.locator("td").nth(6)).to_be_hidden()
            shot(page, "phone-audit-cards")
        if name == "agents":
            # Each cell but the agent's name, its card's title, is under its column's name:
            # the status pill too.
            unlabelled = page.locator(f"{table} tbody td:not([data-label])").evaluate_all(
                "tds => tds.filter((td) => !td.querySelector('a.row-title'))"
                ".map((td) => td.textContent.trim())"
            )
            assert unlabelled == [], unlabelled
            status = page.locator(f"{table} td[data-label=Status]").first
            label = status.evaluate("td => getComputedStyle(td, '::before').content")
            assert label == '"Status"', label

    page.set_viewport_size(DESKTOP)
    for name, table in CARD_LISTS.items():
        page.goto(f"{live_url}{pages[name]}")
        assert page.locator(table).evaluate(CARDS)["header"], name
        assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"], name
        if name == "audit":
            hash_cell = page.locator("#audit-results tbody tr").first.locator("td").nth(6)
            expect(hash_cell).to_be_visible()


def test_every_table_cell_and_button_is_within_reach_on_a_phone(
    page: Page, live_url: str, world: World, admin_user: Any
) -> None:
    """At 390 px the compact tables (the agent's tokens, the policy's grants, rules and
    limits, releases, re-certification, personal tokens...) read as stacked rows, each
    cell under its column's name: no cell or button lies off the screen or in a part of a
    table scrolled out of sight. At 1280 px they are tables with their headers."""
    slug, team = world.agent.slug, world.agent.team.slug
    token_create(actor=SYSTEM, agent=world.agent, environment="staging", name="nightly batch")
    revoked, _raw = token_create(actor=SYSTEM, agent=world.agent, environment="production")
    token_revoke(actor=SYSTEM, token=revoked)
    personal_token_create(user=admin_user, name="approvals bot on my laptop")
    pages = {
        **world.pages(),
        "agent-history": f"/agents/{slug}/history/",
        "approvals-list": "/approvals/?view=list",
        "team-notifications": f"/teams/{team}/notifications/",
        "team-periods": f"/teams/{team}/recertification/",
        "tokens": "/settings/tokens/",
    }
    page.set_viewport_size(PHONE)
    log_in(page, live_url, "ada")
    out_of_reach = {}
    for name, path in pages.items():
        response = page.goto(f"{live_url}{path}")
        assert response is not None and response.status == 200, (name, response)
        out_of_reach[name] = page.evaluate(OUT_OF_REACH)
    out_of_reach = {name: out for name, out in out_of_reach.items() if out}
    assert not out_of_reach, json.dumps(out_of_reach, indent=1)
    # The tables the tester found cut off: stacked, each cell labelled.
    for name, table in {
        "agent": "#agent-tokens > table",
        "policy": "#rules > table",
        "tokens": "#personal-tokens > table",
    }.items():
        page.goto(f"{live_url}{pages[name]}")
        assert assert_stacked(page, table, name) == 1
        SHOTS.mkdir(exist_ok=True)
        page.locator(table).locator("..").screenshot(path=str(SHOTS / f"phone-{name}-stacked.png"))
    page.goto(f"{live_url}{pages['agent']}")
    for button in ("Rotate", "Revoke"):
        expect(page.locator("#agent-tokens").get_by_role("button", name=button)).to_have_count(2)

    page.set_viewport_size(DESKTOP)
    for name in ("agent", "policy", "releases", "recertification-agent", "tokens"):
        page.goto(f"{live_url}{pages[name]}")
        assert page.evaluate(OUT_OF_REACH) == [], name
        headers = page.locator("main table.grid thead").evaluate_all(
            "heads => heads.filter((h) => h.offsetParent).map((h) => getComputedStyle(h).display)"
        )
        assert headers and set(headers) == {"table-header-group"}, (name, headers)


def test_the_header_buttons_of_an_agent_and_an_alert_line_up_on_a_desktop(
    page: Page, live_url: str, world: World
) -> None:
    """ "Open an incident" is a form among links styled as buttons: it sits on the same
    line as they do, not lower."""
    log_in(page, live_url, "ada")
    for name in ("agent", "alert"):
        page.goto(f"{live_url}{world.pages()[name]}")
        row = page.locator(".pagehead .exports")
        tops = {
            text: round(box["y"])
            for text, box in (
                (button.inner_text(), button.bounding_box())
                for button in row.locator("a.button, button, summary.button").all()
                if button.is_visible()
            )
            if box is not None
        }
        opens = {"Open an incident", "Open another incident"}  # another: one is still open
        assert opens & set(tops) and len(set(tops.values())) == 1, (name, tops)
        SHOTS.mkdir(exist_ok=True)
        page.locator(".pagehead").screenshot(path=str(SHOTS / f"desktop-{name}-head.png"))


# --- the stacked tables that only show with data -------------------------------------------


def _busy_agent(agent: Agent, owner: Any) -> dict[str, tuple[str, str, int]]:
    """Ten minutes of refunds around the deletion of "one charge at a time" (placed on a
    timeline, as tests/incidents do), an alert on its denials, an incident analysed on
    ten-second buckets, then a stricter release rolled out in shadow over a few refunds
    that ran. Returns the pages whose stacked tables now have rows (an alert's minutes and
    actions, an incident's causes with their evidence, an action's limits, a release in
    shadow, its replay and a rewind's plan): by name, the path, the tables and how many
    of them at least."""
    grant_reversible_refunds(agent, undo_params={"amount": "params.amount"})
    limit_create(agent=agent, max_count=500, window_seconds=3600)
    rule = forbid_many_charges(agent)
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    body = mix((75, small_refund), (25, bulk_refund))
    before = traffic(token, body, 120, seed=21)
    policy_object_delete(actor=Actor.for_user(owner), obj=rule)
    t0 = AuditEvent.objects.filter(verb=verbs.RULE_DELETED).latest("seq").created_at
    after = traffic(token, body, 50, seed=22)
    place(before, t0 - dt.timedelta(seconds=400), t0)
    place(after, t0, t0 + dt.timedelta(seconds=200))
    now = t0 + dt.timedelta(seconds=200)

    rollup_minutes(start=t0 - dt.timedelta(seconds=460), end=now + dt.timedelta(seconds=1))
    denied = Action.objects.filter(agent=agent, status="denied").order_by("-created_at")
    rows = denied.values(*EVIDENCE_FIELDS, "created_at")[:8]
    alert, _opened = alert_raise(
        finding=Finding(
            agent_id=agent.pk,
            kind="denial_rate",
            severity="warning",
            dedupe_key="denials",
            title=f"{denied.count()} refunds of several charges denied",
            numbers={"denied": denied.count(), "actions_in_window": len(before) + len(after)},
            actions=[evidence_item(row, row["created_at"]) for row in rows],
        ),
        now=now,
    )
    incident, _opened = incident_open(
        actor=SYSTEM,
        kind=TriggerKind.MANUAL,
        target=("monitoring.alert", str(alert.pk)),
        summary=f"Opened from the alert: {alert.title}",
        agent=agent,
    )
    # The analysis as incident_analyse keeps it, as of the end of the placed traffic.
    with override_settings(INCIDENT_BUCKET_SECONDS=10, INCIDENT_LOOKBACK_BUCKETS=60):
        report = analyse(incident, now=now)
    assert report["causes"] and report["causes"][0]["evidence"], report["causes"]
    Incident.objects.filter(pk=incident.pk).update(
        report=report, analysis_state=AnalysisState.DONE, analysed_at=timezone.now()
    )

    # A stricter release, cut and not stable (a rollback makes the one before it stable
    # again), rolled out in shadow: the refunds over 100 it would deny ran under stable.
    forbid_big_refunds(agent)
    candidate = Release.objects.filter(agent=agent).latest("version")
    previous = Release.objects.get(agent=agent, version=candidate.version - 1)
    release_rollback(actor=SYSTEM, release=previous)
    rollout_start(actor=SYSTEM, release=candidate, stage=Stage.SHADOW)
    shadowed = []
    for amount in (40, 250, 900):
        action = decide(token, refund(amount, charges=(f"ch_shadow_{amount}",)))
        assert (action.status, action.shadow_status) == (
            "allowed",
            "denied" if amount > 100 else "allowed",
        )
        ran = ResultInput(outcome="succeeded", after={"refunded": amount})
        shadowed.append(action_report_result(token=token, action_id=action.pk, data=ran))

    slug, version = agent.slug, candidate.version
    return {
        "alert-data": (f"/alerts/{alert.pk}/", "main table.stacked", 2),
        "incident-data": (f"/incidents/{incident.pk}/", "#cause-list table.stacked", 1),
        "action-provenance": (f"/actions/{shadowed[1].pk}/", "#provenance table", 1),
        "release-shadow": (f"/agents/{slug}/releases/{version}/", "#rollout-panel table", 2),
        "release-replay": (
            f"/agents/{slug}/releases/{version}/replay/?window=24h",
            "#replay-report table",
            4,
        ),
        "rewind-plan-data": (
            f"/agents/{slug}/rewind/?since=1h&resource=*",
            "#rewind-plan table",
            2,
        ),
    }


def test_the_tables_with_rows_read_as_labelled_cards_on_a_phone(
    page: Page, live_url: str, agent: Agent, owner: Any, admin_user: Any
) -> None:
    """The stacked tables the main world leaves empty, with rows in them: at 390 px each
    reads as cards, every cell under its column's name, nothing out of reach and the page
    not wider than the screen."""
    pages = _busy_agent(agent, owner)
    page.set_viewport_size(PHONE)
    log_in(page, live_url, "ada")
    for name, (path, tables, at_least) in pages.items():
        response = page.goto(f"{live_url}{path}")
        assert response is not None and response.status == 200, (name, response)
        shown = assert_stacked(page, tables, name)
        assert shown >= at_least, (name, shown)
        assert page.evaluate(OUT_OF_REACH) == [], (name, page.evaluate(OUT_OF_REACH))
        assert_no_sideways_scroll(page, name)
        shot(page, f"phone-{name}")
