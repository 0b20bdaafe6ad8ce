"""notify_killswitch: the owners of the agents a switch stops, and each team's webhook."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oversight.agents.services import agent_create, agent_update
from oversight.killswitch.selectors import Target
from oversight.killswitch.services import killswitch_engage, killswitch_release
from oversight.notifications.models import Notification
from oversight.notifications.services import notify_killswitch
from tests.conftest import SYSTEM
from tests.notifications.conftest import set_channels
from tests.notifications.receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def second_agent(team: Any, owner: Any) -> Any:
    return agent_create(
        actor=SYSTEM,
        name="Dispute bot",
        slug="dispute-bot",
        purpose="Answers chargebacks.",
        owner=owner,
        team=team,
    )


def _engage(target: Target) -> Any:
    return killswitch_engage(actor=SYSTEM, target=target, reason="refund storm")


def _notify(switch: Any, capture: Any, *, engaged: bool = True) -> list[Notification]:
    with capture(execute=True):
        return notify_killswitch(switch_id=switch.pk, engaged=engaged)


def test_each_owner_gets_one_email_listing_their_agents(
    team: Any,
    agent: Any,
    second_agent: Any,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, email=True)
    switch = _engage(Target("team", team=team))
    _notify(switch, django_capture_on_commit_callbacks)
    (mail,) = mailoutbox
    assert mail.to == ["alice@example.com"]
    assert mail.subject == "[Oversight] Kill switch engaged for team payments"
    assert "refund storm" in mail.body
    assert "Refund bot: http://127.0.0.1:8000/agents/refund-bot/" in mail.body
    assert "Dispute bot: http://127.0.0.1:8000/agents/dispute-bot/" in mail.body


def test_an_agent_switch_tells_only_that_agents_owner(
    team: Any,
    other_team: Any,
    agent: Any,
    other_agent: Any,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, email=True)
    set_channels(other_team, email=True)
    _notify(_engage(Target("agent", agent=other_agent)), django_capture_on_commit_callbacks)
    assert [m.to for m in mailoutbox] == [["mallory@example.com"]]
    assert Notification.objects.get().agent == other_agent


def test_a_global_switch_tells_every_team_by_its_own_channels(
    team: Any,
    other_team: Any,
    agent: Any,
    other_agent: Any,
    receiver: Receiver,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, email=True, webhook_url=receiver.url)
    set_channels(other_team, email=False, webhook_url=receiver.url)
    _notify(_engage(Target("global")), django_capture_on_commit_callbacks)
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]  # growth has email off
    bodies = sorted((json.loads(r.body)["oversight"] for r in receiver.received), key=str)
    assert sorted(b["team"]["slug"] for b in bodies) == ["growth", "payments"]
    for body in bodies:
        assert body["event"] == "killswitch.engaged"
        assert body["switch"]["target"] == "everything"
        assert body["agents_total"] == 1


def test_a_release_is_told_as_such(
    team: Any, agent: Any, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    set_channels(team, email=True)
    target = Target("agent", agent=agent)
    _engage(target)
    switch = killswitch_release(actor=SYSTEM, target=target, reason="storm over")
    created = _notify(switch, django_capture_on_commit_callbacks, engaged=False)
    assert [n.kind for n in created] == ["killswitch.released"]
    # By name, as the banner says it (the payload's target keeps the slug).
    assert mailoutbox[-1].subject == "[Oversight] Kill switch released for agent Refund bot"
    assert mailoutbox[-1].body.startswith("The kill switch for agent Refund bot was released")
    assert "may act again" in mailoutbox[-1].body


def test_a_press_is_told_once_and_the_next_press_again(
    team: Any, agent: Any, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    set_channels(team, email=True)
    target = Target("agent", agent=agent)
    first = _engage(target)
    assert len(_notify(first, django_capture_on_commit_callbacks)) == 1
    assert _notify(first, django_capture_on_commit_callbacks) == []
    killswitch_release(actor=SYSTEM, target=target, reason="false alarm")
    second = _engage(target)
    assert len(_notify(second, django_capture_on_commit_callbacks)) == 1
    assert len(mailoutbox) == 2


def test_inactive_owners_are_not_told(
    team: Any,
    agent: Any,
    owner: Any,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, email=True)
    owner.is_active = False
    owner.save()
    assert _notify(_engage(Target("team", team=team)), django_capture_on_commit_callbacks) == []
    assert mailoutbox == []


def test_retired_agents_are_left_out(
    team: Any,
    agent: Any,
    second_agent: Any,
    mailoutbox: list,
    django_capture_on_commit_callbacks: Any,
) -> None:
    set_channels(team, email=True)
    agent_update(actor=SYSTEM, agent=agent, status="retired")
    _notify(_engage(Target("team", team=team)), django_capture_on_commit_callbacks)
    (mail,) = mailoutbox
    assert "Dispute bot" in mail.body
    assert "Refund bot" not in mail.body


def test_a_team_without_channels_is_told_nothing(
    team: Any, agent: Any, mailoutbox: list, django_capture_on_commit_callbacks: Any
) -> None:
    assert _notify(_engage(Target("team", team=team)), django_capture_on_commit_callbacks) == []
    assert mailoutbox == []
