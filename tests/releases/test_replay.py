"""Replay: an agent's recorded decisions re-decided under a candidate release, engine only,
nothing written; the command, its output and exit codes; the release page's button."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.agents.services import token_create
from oversight.gateway.models import Action
from oversight.lib.moments import MomentError, parse_moment
from oversight.releases.models import Release
from oversight.releases.replay import ReplayInputError, replay
from tests.conftest import SYSTEM
from tests.gateway.helpers import REFUND, decide, forbid_big_refunds, grant_refunds, refund

pytestmark = pytest.mark.django_db
AMOUNTS = (50, 150, 300, 700)


@pytest.fixture
def recorded(agent: Any) -> list[Action]:
    """Four refunds allowed under v2 (refunds granted); then v3 forbids those over 100."""
    grant_refunds(agent)
    token, _raw = token_create(actor=SYSTEM, agent=agent, environment="production")
    actions = [decide(token, refund(amount, charges=(f"ch_{amount}",))) for amount in AMOUNTS]
    assert [a.status for a in actions] == ["allowed"] * 4
    assert {a.release_version for a in actions} == {2}
    forbid_big_refunds(agent)
    agent.refresh_from_db()
    assert agent.stable_version == 3
    return actions


def _release(agent: Any, version: int) -> Release:
    return Release.objects.get(agent=agent, version=version)


def _week() -> datetime:
    return timezone.now() - timedelta(days=7)


def _row_counts() -> dict[str, int]:
    """Rows in every table the project's models have."""
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    }


def test_a_stricter_release_turns_recorded_allows_into_denies(agent: Any, recorded: Any) -> None:
    report = replay(agent=agent, release=_release(agent, 3), since=_week())
    assert (report.total, report.changed, report.unchanged) == (4, 3, 1)
    assert report.transitions == {"allow->deny": 3}
    assert report.outcomes_before == {"allow": 4}
    assert report.outcomes_after == {"allow": 1, "deny": 3}
    assert report.by_action == {REFUND: {"allow->deny": 3}}
    assert report.recorded_versions == {"v2": 4} and report.under_stable == 0
    examples = report.examples["allow->deny"]
    assert {ex.params["amount"] for ex in examples} == {150, 300, 700}
    newest = examples[0]  # newest first
    assert newest.id == str(recorded[-1].pk) and newest.resource == "stripe:charge/ch_700"
    assert [r["kind"] for r in newest.before_reasons] == ["grant"]
    assert [r["name"] for r in newest.after_reasons] == ["no big refunds"]
    assert newest.recorded_version == 2
    assert report.decisions_per_second > 0
    assert "limits, kill switches and standing holds" in report.not_replayed


def test_an_identical_release_changes_nothing(agent: Any, recorded: Any) -> None:
    report = replay(agent=agent, release=_release(agent, 2), since=_week())
    assert (report.total, report.changed, report.unchanged) == (4, 0, 4)
    assert report.transitions == {} and report.examples == {} and report.by_action == {}


def test_an_empty_release_denies_everything_by_default(agent: Any, recorded: Any) -> None:
    report = replay(agent=agent, release=_release(agent, 1), since=_week())
    assert report.transitions == {"allow->deny": 4}
    assert report.examples["allow->deny"][0].after_reasons[0]["kind"] == "default"


def test_examples_are_capped(agent: Any, recorded: Any) -> None:
    report = replay(agent=agent, release=_release(agent, 1), since=_week(), max_examples=2)
    assert report.transitions == {"allow->deny": 4}
    assert len(report.examples["allow->deny"]) == 2
    none = replay(agent=agent, release=_release(agent, 1), since=_week(), max_examples=0)
    assert none.examples == {"allow->deny": []} and none.changed == 4


def test_the_window_is_respected(agent: Any, recorded: Any) -> None:
    old = [a.pk for a in recorded[:2]]  # 50 and 150
    Action.objects.filter(pk__in=old).update(created_at=timezone.now() - timedelta(days=10))
    week = replay(agent=agent, release=_release(agent, 3), since=_week())
    assert week.total == 2 and week.transitions == {"allow->deny": 2}
    both = replay(agent=agent, release=_release(agent, 3), since=timezone.now() - timedelta(11))
    assert both.total == 4 and both.transitions == {"allow->deny": 3}
    before = replay(
        agent=agent,
        release=_release(agent, 3),
        since=timezone.now() - timedelta(days=11),
        until=_week(),
    )
    assert before.total == 2 and before.transitions == {"allow->deny": 1}
    assert before.examples["allow->deny"][0].id == str(recorded[1].pk)
    cut = replay(agent=agent, release=_release(agent, 3), since=_week(), max_rows=1)
    assert cut.total == 1 and cut.truncated


def test_rows_without_a_release_are_compared_under_stable(agent: Any, recorded: Any) -> None:
    Action.objects.filter(agent=agent).update(release_version=None)
    report = replay(agent=agent, release=_release(agent, 2), since=_week())
    assert report.under_stable == 4 and report.recorded_versions == {}
    assert report.stable_version == 3
    assert report.transitions == {"deny->allow": 3}  # stable v3 denies, v2 would allow


def test_the_params_the_agent_asked_for_are_replayed(agent: Any, recorded: Any) -> None:
    """A reviewer who approved edited params did not change what the agent asked."""
    Action.objects.filter(pk=recorded[0].pk).update(
        params={"amount": 50, "charges": ["ch_50"]},
        requested_params={"amount": 5000, "charges": ["ch_50"]},
    )
    report = replay(agent=agent, release=_release(agent, 3), since=_week())
    assert report.transitions == {"allow->deny": 4}
    assert {ex.params["amount"] for ex in report.examples["allow->deny"]} >= {5000}


def test_a_condition_that_cannot_be_evaluated_denies(agent: Any, recorded: Any) -> None:
    """No amount: the candidate's forbid rule cannot read it, and fails closed."""
    token = agent.tokens.get()
    action = decide(token, refund(None, charges=("ch_none",)))
    assert action.status == "denied"  # v3 decided it: fail closed on the decision path
    Action.objects.filter(pk=action.pk).update(release_version=2)
    report = replay(agent=agent, release=_release(agent, 3), since=_week())
    assert report.errors == 1
    assert report.transitions == {"allow->deny": 4}
    example = report.examples["allow->deny"][0]
    assert example.id == str(action.pk)
    assert "error" in {r["kind"] for r in example.after_reasons}


def test_other_agents_actions_are_not_replayed(agent: Any, other_agent: Any, recorded: Any) -> None:
    token, _raw = token_create(actor=SYSTEM, agent=other_agent, environment="staging")
    decide(token, refund(900))
    report = replay(agent=agent, release=_release(agent, 3), since=_week())
    assert report.total == 4
    with pytest.raises(ReplayInputError):
        replay(agent=other_agent, release=_release(agent, 3), since=_week())


def test_replay_writes_nothing(client: Client, teammate: Any, agent: Any, recorded: Any) -> None:
    client.force_login(teammate)  # the login's session row is written here, before counting
    before = _row_counts()
    assert before["gateway.Action"] == 4 and before["audit.AuditEvent"] > 0
    assert before["releases.Release"] == 3
    replay(agent=agent, release=_release(agent, 1), since=_week())
    call_command("policy_replay", agent=agent.slug, release=1, stdout=StringIO())
    url = reverse("releases:replay", args=[agent.slug, 1])
    assert client.get(url, {"window": "7d"}, HTTP_HX_REQUEST="true").status_code == 200
    assert _row_counts() == before


def test_windows_parse_durations_and_dates() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert parse_moment("7d", now=now) == now - timedelta(days=7)
    assert parse_moment("24h", now=now) == now - timedelta(hours=24)
    assert parse_moment("30m", now=now) == now - timedelta(minutes=30)
    assert parse_moment("2026-11-25", now=now) == datetime(2026, 11, 25, tzinfo=UTC)
    assert parse_moment("2026-11-25T09:30:00Z") == datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    assert parse_moment("2026-11-25T09:30:00+01:00") == datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
    for bad in ("7 days", "0d", "-1d", "yesterday", "", "2026-13-45", "7w"):
        with pytest.raises(MomentError):
            parse_moment(bad, now=now)


def test_an_empty_window_is_refused(agent: Any, recorded: Any) -> None:
    with pytest.raises(ReplayInputError, match="empty"):
        replay(agent=agent, release=_release(agent, 3), since=timezone.now(), until=_week())


# --- the command -------------------------------------------------------------------------


def test_the_command_prints_what_would_change(agent: Any, recorded: Any) -> None:
    out = StringIO()
    call_command(
        "policy_replay", "--agent", agent.slug, "--since", "7d", "--release", "3", stdout=out
    )
    text = out.getvalue()
    assert "Replay of refund-bot under v3" in text
    assert "Recorded decisions: 4" in text and "Unchanged: 1  Changed: 3" in text
    assert "allow -> deny: 3" in text
    assert "stripe:charge/ch_700" in text and "rule no big refunds (forbid)" in text
    assert "limits, kill switches and standing holds" in text
    assert f"{REFUND}: allow->deny: 3" in text


def test_the_command_prints_json(agent: Any, recorded: Any) -> None:
    out = StringIO()
    call_command(
        "policy_replay", agent=agent.slug, release=3, since="7d", examples=1, json=True, stdout=out
    )
    data = json.loads(out.getvalue())
    assert data["total"] == 4 and data["transitions"] == {"allow->deny": 3}
    assert len(data["examples"]["allow->deny"]) == 1
    assert data["decisions_per_second"] > 0 and data["release_version"] == 3
    assert datetime.fromisoformat(data["since"]) < datetime.fromisoformat(data["until"])


def test_the_command_says_when_nothing_changes(agent: Any, recorded: Any) -> None:
    out = StringIO()
    call_command("policy_replay", agent=agent.slug, release=2, stdout=out)
    assert "No decision would change." in out.getvalue()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"agent": "nobody", "release": 1}, "No agent with slug 'nobody'"),
        ({"agent": "refund-bot", "release": 99}, "refund-bot has no release v99"),
        ({"agent": "refund-bot", "release": 1, "since": "a week"}, "is neither a duration"),
        ({"agent": "refund-bot", "release": 1, "until": "2026-02-30"}, "is neither a duration"),
        ({"agent": "refund-bot", "release": 1, "since": "1d", "until": "2d"}, "window is empty"),
    ],
)
def test_the_command_refuses_bad_input_with_exit_code_2(
    agent: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(CommandError, match=message) as raised:
        call_command("policy_replay", stdout=StringIO(), **options)
    assert raised.value.returncode == 2


# --- the release page --------------------------------------------------------------------


def test_the_release_page_offers_replay_and_shows_the_changes(
    client: Client, teammate: Any, agent: Any, recorded: Any
) -> None:
    client.force_login(teammate)
    page = client.get(reverse("releases:detail", args=[agent.slug, 3])).content.decode()
    url = reverse("releases:replay", args=[agent.slug, 3])
    assert f'hx-get="{url}"' in page and 'name="window"' in page
    partial = client.get(url, {"window": "24h"}, HTTP_HX_REQUEST="true")
    text = partial.content.decode()
    assert "<html" not in text
    assert "<strong>3</strong> would change" in text and "allow → deny: 3" in text
    for action in recorded[1:]:
        assert reverse("approvals:action", args=[action.pk]) in text
    full = client.get(url).content.decode()  # without htmx: a page of its own
    assert "<html" in full and "Replay of" in full and "allow → deny: 3" in full


def test_replay_of_an_identical_release_says_nothing_changes(
    client: Client, teammate: Any, agent: Any, recorded: Any
) -> None:
    client.force_login(teammate)
    url = reverse("releases:replay", args=[agent.slug, 2])
    text = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "No recorded decision would change under v2" in text


def test_replay_needs_a_known_window(client: Client, teammate: Any, agent: Any) -> None:
    client.force_login(teammate)
    url = reverse("releases:replay", args=[agent.slug, 1])
    assert client.get(url, {"window": "1y"}).status_code == 400
    shown = client.get(url, {"window": "abc"}, HTTP_ACCEPT="text/html")  # a person: the page
    assert shown.status_code == 400
    assert "The window &#x27;abc&#x27; is not one of" in shown.content.decode()
    assert "<h1>That address asks for something unclear</h1>" in shown.content.decode()


def test_a_comparison_of_something_else_than_versions_says_what_it_shows(
    client: Client, owner: Any, agent: Any
) -> None:
    """`?old=abc&new=3` silently showed two other versions."""
    client.force_login(owner)
    url = reverse("releases:compare", args=[agent.slug])
    page = client.get(url, {"old": "abc", "new": "3"}, follow=True).content.decode()
    assert "&#x27;abc&#x27; and &#x27;3&#x27;: not two version numbers; showing v" in page


@pytest.mark.parametrize(("who", "status"), [("teammate", 200), ("owner", 200), ("outsider", 404)])
def test_who_may_view_the_agent_may_replay(
    client: Client, request: pytest.FixtureRequest, agent: Any, who: str, status: int
) -> None:
    client.force_login(request.getfixturevalue(who))
    url = reverse("releases:replay", args=[agent.slug, 1])
    assert client.get(url, HTTP_HX_REQUEST="true").status_code == status


def test_replay_needs_a_login(client: Client, agent: Any) -> None:
    response = client.get(reverse("releases:replay", args=[agent.slug, 1]))
    assert response.status_code == 302 and "/login/" in response["Location"]
