"""A small world every person's pages can be checked in: the refund bot with a policy,
traffic, a held action, an alert and an incident; an admin, its owner, a teammate, a reviewer and an
auditor; and the main pages each of them opens. Used by the phone, live-console,
accessibility and kill-switch checks."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.utils import timezone
from playwright.sync_api import Page, expect

from oversight.agents.models import Agent, AgentToken
from oversight.agents.services import agent_access_grant, token_create
from oversight.gateway.models import Action
from oversight.incidents.models import Incident, TriggerKind
from oversight.incidents.services import incident_analyse, incident_open
from oversight.monitoring.models import Alert
from oversight.monitoring.services import Finding, alert_raise
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, limit_create, refund, refund_policy_create

SHOTS = Path(tempfile.gettempdir()) / "oversight-shots"  # /tmp/oversight-shots
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
RECORD_SOCKET_OPEN = (
    "document.addEventListener('htmx:wsOpen', () => { window.__socketOpen = true; });"
)


@dataclass(frozen=True)
class World:
    agent: Agent
    token: AgentToken
    held: Action
    alert: Alert
    incident: Incident

    def pages(self) -> dict[str, str]:
        """The main pages by name, with their paths."""
        slug = self.agent.slug
        return {
            "overview": "/",
            "agents": "/agents/",
            "agent": f"/agents/{slug}/",
            "policy": f"/agents/{slug}/policy/",
            "approvals": "/approvals/",
            "action": f"/actions/{self.held.pk}/",
            "recertification": "/recertification/",
            "recertification-agent": f"/recertification/{slug}/",
            "alerts": "/alerts/",
            "alert": f"/alerts/{self.alert.pk}/",
            "audit": "/audit/",
            "team": f"/teams/{self.agent.team.slug}/",
            "releases": f"/agents/{slug}/releases/",
            "release": f"/agents/{slug}/releases/1/",  # not stable: the rollout form
            "release-compare": f"/agents/{slug}/releases/compare/",
            "rewind-plan": f"/agents/{slug}/rewind/?since=1h&resource=*",
            "incidents": "/incidents/?status=",
            "incident": f"/incidents/{self.incident.pk}/",
            "inbox": "/inbox/",
        }


def make_world(agent: Agent, reviewer: Any, auditor: Any) -> World:
    """Call with the fixtures of tests/conftest.py (the team's owner and teammate, the
    admin and the growth team's agent are made by them too)."""
    for person, level in ((reviewer, "reviewer"), (auditor, "viewer")):
        agent_access_grant(actor=SYSTEM, agent=agent, user=person, level=level)
    refund_policy_create(agent, expires_in_seconds=900)
    limit_create(agent=agent, max_count=500, window_seconds=3600)
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    for amount in (20, 30, 40):
        decide(token, refund(amount))
    decide(token, refund(25, charges=("ch_1", "ch_2")))  # forbidden: denied
    held = decide(token, refund(900, charges=("ch_big_refund_for_a_long_resource_name",)))
    finding = Finding(
        agent_id=agent.pk,
        kind="denial_rate",
        severity="warning",
        dedupe_key="denials",
        title="1 of 5 actions denied in 5 minutes (20%)",
        numbers={"denied": 1, "actions_in_window": 5},
    )
    alert, _opened = alert_raise(finding=finding, now=timezone.now())
    incident, _opened = incident_open(
        actor=SYSTEM,
        kind=TriggerKind.MANUAL,
        target=("monitoring.alert", str(alert.pk)),
        summary=f"Opened from the alert: {alert.title}",
        agent=agent,
    )
    incident_analyse(incident_id=incident.pk)  # its page complete, with or without a worker
    return World(agent, token, held, alert, incident)


def log_in(page: Page, base: str, username: str, path: str = "/") -> None:
    page.goto(f"{base}/login/?next={path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}{path}")


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# A table read as cards on a phone (the shared .stacked rows): how many cells show, whether
# its header row does, whether it scrolls inside its box, and the cells off the screen.
CARDS = """(table) => {
  const cells = Array.from(table.querySelectorAll("tbody td")).filter((td) => td.offsetParent);
  return {
    cells: cells.length,
    header: getComputedStyle(table.tHead).display !== "none",
    scrolls: table.scrollWidth > table.clientWidth,
    outside: cells.filter((td) => td.getBoundingClientRect().right > window.innerWidth + 1)
      .map((td) => td.textContent.trim().slice(0, 40)),
  };
}"""


# What of a page's tables and buttons a person cannot reach: every shown cell and button in
# the page's main part that lies outside the screen, or outside the visible part of a box
# that clips or scrolls it (a table scrolling inside its card hides columns with no cue).
OUT_OF_REACH = """() => {
  const clips = (e) => ["auto", "scroll", "hidden"].includes(getComputedStyle(e).overflowX);
  return Array.from(document.querySelectorAll("main td, main th, main button, main .button"))
    .filter((e) => e.checkVisibility() && e.getBoundingClientRect().width > 0)
    .filter((e) => {
      const r = e.getBoundingClientRect();
      let left = 0, right = window.innerWidth;
      for (let p = e.parentElement; p; p = p.parentElement) {
        if (!clips(p)) continue;
        const box = p.getBoundingClientRect();
        left = Math.max(left, box.left);
        right = Math.min(right, box.right);
      }
      return r.left < left - 1 || r.right > right + 1;
    })
    .map((e) => {
      const { left, right } = e.getBoundingClientRect();
      const text = e.textContent.trim().replace(/\\s+/g, " ").slice(0, 30);
      return `${e.tagName} "${text}" ${Math.round(left)}-${Math.round(right)}px`;
    })
    .slice(0, 10);
}"""
