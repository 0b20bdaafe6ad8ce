"""Sides of a behaviour diff as people write them, on the page's form and in the API:
a release of the agent ("v3") or a window of two moments, ISO datetimes
("2026-12-01T10:00/2026-12-01T11:00") or durations back from now ("2h/1h", "24h/now")."""

from __future__ import annotations

import re
from datetime import datetime

from django.utils import timezone

from oversight.agents.constants import Environment
from oversight.agents.models import Agent
from oversight.incidents.behaviour_diff import Side, SideError
from oversight.lib.moments import MomentError, parse_moment
from oversight.releases.models import Release
from oversight.releases.selectors import release_list

_VERSION = re.compile(r"^v?(\d{1,9})$", re.IGNORECASE)


def side_parse(
    text: str,
    *,
    agent: Agent,
    environment: str | None = Environment.PRODUCTION,
    now: datetime | None = None,
) -> Side:
    """A side as a person writes it: a release ("v3" or "3") of this agent, or a window
    "start/end" of two moments (oversight/lib/moments.py: "2026-12-01T10:00", "2h";
    an end of "now" or nothing means now)."""
    text = (text or "").strip()
    if not text:
        raise SideError("Choose a release (like v3) or a window (like 2h/now).")
    found = _VERSION.match(text)
    if found:
        version = int(found.group(1))
        if not Release.objects.filter(agent=agent, version=version).exists():
            raise SideError(f"{agent.name} has no release v{version}.")
        return Side.release(version, environment=environment)
    start_text, slash, end_text = text.partition("/")
    if not slash:
        raise SideError(
            f"{text!r} is neither a release like v3 nor a window like "
            "2026-12-01T10:00/2026-12-01T11:00 or 2h/1h."
        )
    now = now or timezone.now()
    try:
        start = parse_moment(start_text, now=now)
        end = now if end_text.strip() in ("", "now") else parse_moment(end_text, now=now)
    except MomentError as exc:
        raise SideError(f"In the window {text!r}: {exc}") from None
    if start >= end:
        raise SideError(f"The window {text!r} must end after it starts.")
    return Side.window(start, end, environment=environment)


ENVIRONMENTS = {"production": Environment.PRODUCTION, "staging": Environment.STAGING, "all": None}


def sides_parse(
    *,
    agent: Agent,
    left: str,
    right: str,
    environment: str = "production",
    now: datetime | None = None,
) -> tuple[Side, Side]:
    """Both sides of a diff as the page's form and the API take them; SideError names the
    input that is wrong (``left``, ``right`` or ``env``)."""
    if environment not in ENVIRONMENTS:
        raise SideError(f"The environment is one of {', '.join(ENVIRONMENTS)}.", "env")
    now = now or timezone.now()
    sides = []
    for name, text in (("left", left), ("right", right)):
        try:
            sides.append(
                side_parse(text, agent=agent, environment=ENVIRONMENTS[environment], now=now)
            )
        except SideError as exc:
            raise SideError(f"{name.capitalize()}: {exc}", name) from None
    return sides[0], sides[1]


def default_sides(*, agent: Agent) -> tuple[str, str]:
    """What the form offers before any choice: stable against a newer release (a
    candidate), else the release before stable against stable, else the last 12 hours
    against the 12 before."""
    stable = agent.stable_version
    versions = list(release_list(agent=agent).values_list("version", flat=True)[:50])
    if stable is not None and versions and versions[0] != stable:
        return f"v{stable}", f"v{versions[0]}"
    older = [v for v in versions if stable is not None and v < stable]
    if older:
        return f"v{older[0]}", f"v{stable}"
    return "24h/12h", "12h/now"
