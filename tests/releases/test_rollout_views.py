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


def _advance(client: Client, agent: Any, rollout: Any, why: str = "") -> tuple[str, str]:
    """Press "Advance now" (with a reason typed): the flash, and the page it leads to."""
    url = reverse("releases:rollout-step", args=[agent.slug, rollout.pk, "advance"])
    response = client.post(url, {"why": why} if why else {}, follow=True)
    flash = [str(m) for m in get_messages(response.wsgi_request)]
    return flash[-1], response.content.decode()


def test_advancing_past_the_last_stage_says_the_release_is_stable(
    client: Client, owner: Any, agent: Any
) -> None:
    """It said "Advanced to the next stage." and listed the rollout just completed under
    "Earlier rollouts" of a release that had no other."""
    candidate, rollout = canary_of_new_instructions(agent, plan=[10, 50, 100])
    client.force_login(owner)
    why = "checked the canary by hand"
    assert _advance(client, agent, rollout, why)[0] == "Advanced to the next stage."
    rollout.refresh_from_db()
    flash, page = _advance(client, agent, rollout, why)
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.COMPLETED
    assert flash == f"v{candidate.version} is stable: the rollout is complete."
    assert f"Rollouts of v{candidate.version}</h3>" in page
    assert "Earlier rollouts" not in page
    # When it ended, not when it started, and why: "6 Dec 20:54: completed at full: by
    # admin" was its start. (Advanced before the guard looked, so the reason says so.)
    ended = timezone.localtime(rollout.ended_at).strftime("%-d %b %H:%M")
    unjudged = "advanced before the guard judged the stage: the guard has not looked at it yet"
    assert f"{ended} · completed at full ({why}; {unjudged})</summary>" in page


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
    _advance(client, agent, rollout, "by hand")
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


def test_a_stage_the_guard_has_not_judged_is_advanced_only_with_a_reason(
    client: Client, owner: Any, agent: Any
) -> None:
    """ "Advance now" pressed five times took a rollout from staging to stable with no
    stage judged, no question asked and nothing recorded but the share."""
    from oversight.audit.models import AuditEvent

    candidate, rollout = canary_of_new_instructions(agent, plan=[10, 50, 100])
    client.force_login(owner)
    page = reverse("releases:detail", args=[agent.slug, candidate.version])
    shown = client.get(page).content.decode()
    assert 'name="why" required' in shown and "Advance before the guard has judged" in shown
    flash, _ = _advance(client, agent, rollout)
    assert flash == (
        "The guard has not judged this stage (the guard has not looked at it yet): say why"
        " you advance it now."
    )
    rollout.refresh_from_db()
    assert (rollout.step, rollout.share_percent) == (0, 10.0)  # nothing changed
    assert rollout_guard_one(rollout) == "watching"
    assert "0 of 200 decisions under the candidate" in client.get(page).content.decode()
    assert _advance(client, agent, rollout, "a quiet hour")[0] == "Advanced to the next stage."
    event = AuditEvent.objects.filter(verb="rollout.advanced").latest("seq")
    assert event.after["why"] == (
        "a quiet hour; advanced before the guard judged the stage: 0 of 200 decisions under"
        " the candidate"
    )


def test_a_staging_stage_without_a_staging_token_says_its_count_will_not_move(
    client: Client, owner: Any, agent: Any
) -> None:
    """It showed "0 of 200 decisions" for ever, with no hint why."""
    from oversight.agents.services import agent_update, token_create
    from oversight.releases.rollouts import rollout_start
    from oversight.releases.services import release_rollback
    from tests.conftest import SYSTEM

    agent_update(actor=SYSTEM, agent=agent, instructions="Refund carefully.")
    candidate = agent.releases.order_by("-version").first()
    release_rollback(actor=SYSTEM, release=agent.releases.get(version=candidate.version - 1))
    rollout_start(actor=SYSTEM, release=candidate, stage="staging")
    token_create(actor=SYSTEM, agent=agent, environment="production")
    client.force_login(owner)
    page = reverse("releases:detail", args=[agent.slug, candidate.version])
    said = "has no active staging token, so nothing decides under"
    assert said in client.get(page).content.decode()
    token_create(actor=SYSTEM, agent=agent, environment="staging")
    assert said not in client.get(page).content.decode()


def test_a_rollback_for_a_critical_alert_shows_the_alert_among_its_evidence(
    client: Client, owner: Any, agent: Any
) -> None:
    """The kept evidence must show what rolled it back, not only rates "too few"."""
    from oversight.monitoring.models import Alert

    candidate, rollout = canary_of_new_instructions(agent, plan=[50, 100])
    now = timezone.now()
    Alert.objects.create(
        agent=agent,
        kind="denial_rate",
        severity="critical",
        title="50 of 94 actions denied in 5 minutes (53%)",
        dedupe_key="denial_rate:test",
        opened_at=now,
        last_seen_at=now,
    )
    assert rollout_guard_one(rollout) == "rolled_back"
    client.force_login(owner)
    page = client.get(reverse("releases:detail", args=[agent.slug, candidate.version]))
    text = page.content.decode()
    assert "guard: critical alert opened during the canary: 50 of 94 actions denied" in text
    row = text[text.index('<tr class="regressed">') :].split("</tr>")[0]
    assert "alert" in row and "50 of 94 actions denied in 5 minutes (53%)" in row
    assert "regression" in row
