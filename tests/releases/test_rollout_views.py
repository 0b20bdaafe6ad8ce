"""The release page's rollout panel and its buttons, as an owner uses them."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.releases.guard import rollout_guard_one
from oversight.releases.models import RolloutState
from tests.releases.helpers import canary_of_new_instructions

pytestmark = pytest.mark.django_db


def _advance(client: Client, agent: Any, rollout: Any) -> tuple[str, str]:
    """Press "Advance now": the flash, and the release page it leads to."""
    url = reverse("releases:rollout-step", args=[agent.slug, rollout.pk, "advance"])
    response = client.post(url, follow=True)
    flash = [str(m) for m in get_messages(response.wsgi_request)]
    return flash[-1], response.content.decode()


def test_advancing_past_the_last_stage_says_the_release_is_stable(
    client: Client, owner: Any, agent: Any
) -> None:
    """It said "Advanced to the next stage." and listed the rollout just completed under
    "Earlier rollouts" of a release that had no other."""
    candidate, rollout = canary_of_new_instructions(agent, plan=[10, 50, 100])
    client.force_login(owner)
    assert _advance(client, agent, rollout)[0] == "Advanced to the next stage."
    rollout.refresh_from_db()
    flash, page = _advance(client, agent, rollout)
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED
    assert flash == f"v{candidate.version} is stable: the rollout is complete."
    assert f"Rollouts of v{candidate.version}</h3>" in page
    assert "Earlier rollouts" not in page
    # When it ended, not when it started, and why: "6 Dec 20:54: completed at full: by
    # admin" was its start.
    ended = timezone.localtime(rollout.ended_at).strftime("%-d %b %H:%M")
    assert f"{ended} · completed at full (by {owner.username})</summary>" in page


def test_after_an_advance_the_guards_look_at_the_last_stage_is_named_so(
    client: Client, owner: Any, agent: Any
) -> None:
    """The canary showed the guard's look at the stage before (its verdicts, its time)
    as if it were of the canary, until the guard first looked at the canary."""
    candidate, rollout = canary_of_new_instructions(agent, plan=[10, 50, 100])
    assert rollout_guard_one(rollout) == "watching"
    client.force_login(owner)
    page = reverse("releases:detail", args=[agent.slug, candidate.version])
    looked = client.get(page).content.decode()
    assert "The guard's last look (" in looked
    assert "not looked at this stage yet" not in looked
    _advance(client, agent, rollout)
    advanced = client.get(page).content.decode()
    assert "The guard's last look, before this stage (" in advanced
    assert "It has not looked at this stage yet." in advanced
    rollout.refresh_from_db()
    assert rollout_guard_one(rollout) == "watching"
    again = client.get(page).content.decode()
    assert "The guard's last look (" in again and "not looked at this stage yet" not in again


def test_under_change_control_the_start_form_offers_staging_only(
    client: Client, owner: Any, agent: Any
) -> None:
    """It offered shadow and canary too, then refused them."""
    from oversight.accounts.services import team_change_control_update
    from oversight.releases.rollouts import rollout_roll_back
    from tests.conftest import SYSTEM

    candidate, rollout = canary_of_new_instructions(agent, plan=[10, 100])
    rollout_roll_back(actor=SYSTEM, rollout=rollout, why="for another try", restore=False)
    client.force_login(owner)
    page = reverse("releases:detail", args=[agent.slug, candidate.version])
    assert 'value="shadow"' in client.get(page).content.decode()
    team_change_control_update(actor=SYSTEM, team=agent.team, staged_releases_from="low")
    gated = client.get(page).content.decode()
    assert 'value="staging"' in gated
    assert 'value="shadow"' not in gated and 'value="canary"' not in gated
    assert "requires an approved, staged rollout: it starts at staging" in gated
