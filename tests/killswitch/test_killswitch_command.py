"""`manage.py killswitch engage|release --scope ... --reason ...`."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from oversight.agents.models import Agent
from oversight.audit.models import AuditEvent
from oversight.killswitch.models import KillSwitch
from oversight.killswitch.selectors import halting_switch

pytestmark = pytest.mark.django_db

SCOPES = [
    ("global", "everything", {"team": None, "agent": None}),
    ("team:payments", "team payments", {"team__slug": "payments", "agent": None}),
    ("agent:refund-bot", "agent refund-bot", {"team": None, "agent__slug": "refund-bot"}),
]


def _killswitch(*args: str) -> str:
    out = io.StringIO()
    call_command("killswitch", *args, stdout=out)
    return out.getvalue()


def _switch_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(verb__startswith="killswitch.").order_by("seq"))


@pytest.mark.parametrize(("scope", "label", "lookup"), SCOPES, ids=["global", "team", "agent"])
def test_engage_then_release(agent: Agent, scope: str, label: str, lookup: dict[str, Any]) -> None:
    out = _killswitch("engage", "--scope", scope, "--reason", "refund storm")
    assert out == f"Kill switch for {label} ENGAGED.\n"
    switch = KillSwitch.objects.get(**lookup)
    assert (switch.scope, switch.engaged, switch.reason) == (
        scope.partition(":")[0],
        True,
        "refund storm",
    )
    assert switch.changed_at is not None
    assert halting_switch(agent_id=agent.pk) == switch

    out = _killswitch("release", "--scope", scope, "--reason", "storm over")
    assert out == f"Kill switch for {label} released.\n"
    switch.refresh_from_db()
    assert (switch.engaged, switch.reason) == (False, "storm over")
    assert halting_switch(agent_id=agent.pk) is None
    assert KillSwitch.objects.count() == 1  # one row per target, reused


@pytest.mark.parametrize(
    ("scope", "lookup"), [(s, lookup) for s, _, lookup in SCOPES], ids=["global", "team", "agent"]
)
def test_each_press_is_audited_with_its_reason(
    agent: Agent, scope: str, lookup: dict[str, Any]
) -> None:
    _killswitch("engage", "--scope", scope, "--reason", "refund storm")
    _killswitch("release", "--scope", scope, "--reason", "storm over")

    engaged, released = _switch_events()
    assert (engaged.verb, released.verb) == ("killswitch.engaged", "killswitch.released")
    assert {engaged.actor_label, released.actor_label} == {"system:killswitch-command"}
    assert engaged.before == {"engaged": False, "reason": ""}
    assert engaged.after == {"engaged": True, "reason": "refund storm"}
    assert released.before == {"engaged": True, "reason": "refund storm"}
    assert released.after == {"engaged": False, "reason": "storm over"}
    switch = KillSwitch.objects.get(**lookup)
    assert {(e.target_type, e.target_id) for e in (engaged, released)} == {
        ("killswitch.killswitch", str(switch.pk))
    }
    assert engaged.agent_id == (agent.pk if scope.startswith("agent:") else None)


def test_engaging_an_engaged_switch_fails_and_keeps_its_reason(agent: Agent) -> None:
    # It used to replace the reason silently, as if pressed anew (and tell everyone again).
    _killswitch("engage", "--scope", "agent:refund-bot", "--reason", "first")
    switch = KillSwitch.objects.get()
    with pytest.raises(CommandError) as raised:
        _killswitch("engage", "--scope", "agent:refund-bot", "--reason", "worse")
    assert str(raised.value).startswith(
        "The kill switch for agent Refund bot is already engaged since "
    )
    assert str(raised.value).endswith(" by the command line or a removed user: first")
    after = KillSwitch.objects.get()
    assert (after.engaged, after.reason, after.changed_at) == (True, "first", switch.changed_at)
    assert [e.verb for e in _switch_events()] == ["killswitch.engaged"]


def _nothing_changed() -> bool:
    return not KillSwitch.objects.filter(engaged=True).exists() and not _switch_events()


def test_a_missing_reason_fails(agent: Agent) -> None:
    with pytest.raises(CommandError, match="--reason"):
        _killswitch("engage", "--scope", "global")
    assert _nothing_changed()


@pytest.mark.parametrize("operation", ["engage", "release"])
def test_a_blank_reason_fails(agent: Agent, operation: str) -> None:
    if operation == "release":
        _killswitch("engage", "--scope", "global", "--reason", "incident")
    with pytest.raises(CommandError, match=f"Say why the kill switch is {operation}d"):
        _killswitch(operation, "--scope", "global", "--reason", "   ")
    assert KillSwitch.objects.filter(engaged=(operation == "release")).count() == (
        1 if operation == "release" else 0
    )
    assert len(_switch_events()) == (1 if operation == "release" else 0)


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ("team:no-such-team", "No team 'no-such-team'."),
        ("agent:no-such-bot", "No agent 'no-such-bot'."),
    ],
    ids=["team", "agent"],
)
def test_an_unknown_target_fails(agent: Agent, scope: str, message: str) -> None:
    with pytest.raises(CommandError) as raised:
        _killswitch("engage", "--scope", scope, "--reason", "incident")
    assert str(raised.value) == message
    assert _nothing_changed()
    assert not KillSwitch.objects.exists()


@pytest.mark.parametrize(
    "scope", ["everything", "GLOBAL", "team:", "agent:", "global:payments", "user:alice", ""]
)
def test_bad_scope_text_fails(agent: Agent, scope: str) -> None:
    with pytest.raises(CommandError) as raised:
        _killswitch("engage", "--scope", scope, "--reason", "incident")
    assert str(raised.value) == f"{scope!r} is not a scope: use global, team:NAME or agent:SLUG."
    assert _nothing_changed()
    assert not KillSwitch.objects.exists()


def test_an_unknown_operation_fails(agent: Agent) -> None:
    with pytest.raises(CommandError, match="invalid choice"):
        _killswitch("toggle", "--scope", "global", "--reason", "incident")


def test_releasing_a_released_switch_fails_and_changes_nothing(agent: Agent) -> None:
    _killswitch("engage", "--scope", "team:payments", "--reason", "incident")
    _killswitch("release", "--scope", "team:payments", "--reason", "over")
    with pytest.raises(CommandError) as raised:
        _killswitch("release", "--scope", "team:payments", "--reason", "again")

    assert str(raised.value) == "The kill switch for team payments is not engaged."
    assert KillSwitch.objects.get().reason == "over"
    assert [e.verb for e in _switch_events()] == ["killswitch.engaged", "killswitch.released"]


def test_releasing_a_never_engaged_switch_fails_and_creates_nothing(agent: Agent) -> None:
    with pytest.raises(CommandError, match="The kill switch for agent refund-bot is not engaged"):
        _killswitch("release", "--scope", "agent:refund-bot", "--reason", "just in case")
    assert not KillSwitch.objects.exists()
    assert not _switch_events()


def test_a_team_is_named_as_people_write_it_and_the_presser_is_recorded(
    agent: Agent, owner: Any
) -> None:
    """`team:Payments` is team payments (its name, in any case, or its slug); `--by`
    records who pressed it, as the browser does."""
    _killswitch("engage", "--scope", "team:Payments", "--reason", "storm", "--by", "alice")
    event = _switch_events()[-1]
    assert (event.actor_type, event.actor_label) == ("user", "alice")
    assert KillSwitch.objects.get(team__slug="payments").engaged
    with pytest.raises(CommandError, match="No active user 'nobody'"):
        _killswitch("release", "--scope", "team:payments", "--reason", "ok", "--by", "nobody")
    assert KillSwitch.objects.get(team__slug="payments").engaged  # nothing changed
