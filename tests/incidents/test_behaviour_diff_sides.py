"""Sides as people write them: a release, or a window of two moments."""

from __future__ import annotations

import datetime as dt

import pytest

from oversight.agents.models import Agent
from oversight.incidents.behaviour_diff import Side, SideError
from oversight.incidents.diff_sides import side_parse, sides_parse
from tests.incidents.behaviour_data import two_releases

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def test_a_release_by_version(agent: Agent) -> None:
    old, _new = two_releases(agent)
    assert side_parse(f"v{old}", agent=agent) == Side.release(old)
    assert side_parse(f" {old} ", agent=agent, environment=None) == Side(
        version=old, environment=None
    )
    with pytest.raises(SideError, match="Refund bot has no release v42"):
        side_parse("V42", agent=agent)


def test_a_window_of_datetimes_or_durations_back_from_now(agent: Agent) -> None:
    ten = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)
    found = side_parse("2026-12-01T10:00/2026-12-01T12:00+01:00", agent=agent, now=NOW)
    assert (found.start, found.end) == (ten, ten + HOUR)  # UTC unless it says otherwise
    assert side_parse("2h/1h", agent=agent, now=NOW) == Side.window(NOW - 2 * HOUR, NOW - HOUR)
    assert side_parse("24h/now", agent=agent, now=NOW) == Side.window(NOW - 24 * HOUR, NOW)
    assert side_parse("30m/", agent=agent, now=NOW) == Side.window(NOW - HOUR / 2, NOW)
    assert side_parse(found.query, agent=agent, now=NOW) == found  # links round-trip


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Choose a release"),
        ("last week", "neither a release like v3 nor a window"),
        ("1h/2h", "must end after it starts"),
        ("1h/1h", "must end after it starts"),
        ("soon/now", "In the window 'soon/now': 'soon' is neither a duration"),
    ],
)
def test_what_is_not_a_side_says_so(agent: Agent, text: str, says: str) -> None:
    with pytest.raises(SideError, match=says):
        side_parse(text, agent=agent, now=NOW)


def test_both_sides_name_the_input_that_is_wrong(agent: Agent) -> None:
    with pytest.raises(SideError) as found:
        sides_parse(agent=agent, left="2h/1h", right="nope", now=NOW)
    assert found.value.field == "right" and str(found.value).startswith("Right: ")
    with pytest.raises(SideError) as found:
        sides_parse(agent=agent, left="2h/1h", right="1h/now", environment="dev", now=NOW)
    assert found.value.field == "env"
    left, right = sides_parse(agent=agent, left="2h/1h", right="1h/now", environment="all")
    assert left.environment is None and right.environment is None


def test_a_version_made_by_a_rollback_has_the_history_of_the_release_it_restored(
    agent: Agent,
) -> None:
    from oversight.incidents.behaviour_diff import side_decisions
    from oversight.releases.models import Release
    from oversight.releases.services import release_rollback
    from tests.conftest import SYSTEM
    from tests.incidents.behaviour_data import record, refund_row

    old, new = two_releases(agent)
    record(agent, 30, refund_row, version=old)
    record(agent, 20, refund_row, version=new, seed=2)
    restored = release_rollback(actor=SYSTEM, release=Release.objects.get(agent=agent, version=old))
    assert restored is not None and restored.version not in (old, new)
    record(agent, 5, refund_row, version=restored.version, seed=3)

    assert side_decisions(agent=agent, side=Side.release(restored.version)).count() == 35
    assert side_decisions(agent=agent, side=Side.release(old)).count() == 35
    assert side_decisions(agent=agent, side=Side.release(new)).count() == 20
