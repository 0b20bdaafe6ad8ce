"""The behaviour diff's page and API: who may see it, what a bad side says, and that both
show the same flagged differences."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.accounts.services import personal_token_create
from oversight.agents.models import Agent
from oversight.agents.services import token_create
from tests.conftest import SYSTEM
from tests.gateway.helpers import AgentApi
from tests.incidents.behaviour_data import record, refund_row, two_releases

pytestmark = pytest.mark.django_db


@pytest.fixture
def releases(agent: Agent) -> tuple[int, int]:
    """An older release with few denials, the stable one denying a quarter of refunds and
    wiring money."""
    old, new = two_releases(agent)
    record(agent, 300, lambda rng: refund_row(rng, deny=0.03), version=old, seed=1)

    def candidate(rng: Any) -> dict[str, Any]:
        row = refund_row(rng, deny=0.25)
        return {**row, "action": "payments.wire"} if rng.random() < 0.2 else row

    record(agent, 300, candidate, version=new, seed=2)
    return old, new


def _page(user: Any, slug: str, **query: str) -> Any:
    client = Client()
    client.force_login(user)
    return client.get(reverse("behaviour:diff", args=[slug]), query)


def _api(user: Any) -> AgentApi:
    return AgentApi(Client(), personal_token_create(user=user, name="cli")[1])


def test_the_owner_sees_what_changed_between_two_releases(
    agent: Agent, owner: Any, releases: tuple[int, int]
) -> None:
    response = _page(owner, agent.slug, left=f"v{releases[0]}", right=f"v{releases[1]}")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Behaviour: v{releases[0]} → v{releases[1]}" in html
    assert "decision denied: " in html and "flagged: significant after correction" in html
    flagged = [row["label"] for row in response.context["rows"]["flagged"]]
    assert "decision denied" in flagged and "action payments.wire" in flagged
    assert "payments.wire" in html and "right only" in html


def test_a_teammate_may_compare_and_an_outsider_gets_404(
    agent: Agent, teammate: Any, outsider: Any, releases: tuple[int, int]
) -> None:
    assert (
        _page(teammate, agent.slug, left=f"v{releases[0]}", right=f"v{releases[1]}").status_code
        == 200
    )
    assert (
        _page(outsider, agent.slug, left=f"v{releases[0]}", right=f"v{releases[1]}").status_code
        == 404
    )
    assert _page(outsider, agent.slug).status_code == 404
    anonymous = Client().get(reverse("behaviour:diff", args=[agent.slug]))
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


@pytest.mark.parametrize(
    ("left", "right", "says"),
    [
        ("v99", "{new}", "Left: Refund bot has no release v99."),
        ("{old}", "yesterday", "Right: &#x27;yesterday&#x27; is neither a release like v3"),
        ("2h/3h", "{new}", "Left: The window &#x27;2h/3h&#x27; must end after it starts."),
        ("2026-13-01T10:00/now", "{new}", "Left: In the window"),
        ("", "{new}", "Left: Choose a release (like v3) or a window"),
    ],
)
def test_a_bad_side_is_explained_on_the_page(
    agent: Agent, owner: Any, releases: tuple[int, int], left: str, right: str, says: str
) -> None:
    old, new = (f"v{version}" for version in releases)
    response = _page(
        owner, agent.slug, left=left.format(old=old, new=new), right=right.format(old=old, new=new)
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert says in html and 'role="alert"' in html
    assert 'aria-invalid="true"' in html
    assert "Summary" not in html  # nothing compared


def test_a_bad_environment_is_explained_too(
    agent: Agent, owner: Any, releases: tuple[int, int]
) -> None:
    response = _page(owner, agent.slug, left=f"v{releases[0]}", right=f"v{releases[1]}", env="moon")
    assert response.status_code == 400
    assert "The environment is one of production, staging, all." in response.content.decode()


def test_without_sides_the_form_offers_the_release_before_stable(
    agent: Agent, owner: Any, releases: tuple[int, int]
) -> None:
    response = _page(owner, agent.slug)
    assert response.status_code == 200
    old, new = releases
    assert response.context["form"] == {"left": f"v{old}", "right": f"v{new}", "env": "production"}
    assert "diff" not in response.context


def test_two_windows_compare_on_the_page(
    agent: Agent, owner: Any, releases: tuple[int, int]
) -> None:
    response = _page(owner, agent.slug, left="2h/1h", right="1h/now", env="all")
    assert response.status_code == 200
    diff = response.context["diff"]
    assert diff.right.decisions == 600 and diff.left.decisions == 0
    assert diff.flagged == []  # nothing on the left to judge by


def test_the_release_page_links_to_the_comparison_with_stable(
    agent: Agent, owner: Any, releases: tuple[int, int]
) -> None:
    client = Client()
    client.force_login(owner)
    old, new = releases
    older = client.get(reverse("releases:detail", args=[agent.slug, old])).content.decode()
    assert f"/agents/{agent.slug}/behaviour/?left=v{new}&amp;right=v{old}" in older
    assert "Compare behaviour with the stable release" in older
    stable = client.get(reverse("releases:detail", args=[agent.slug, new])).content.decode()
    assert f"/agents/{agent.slug}/behaviour/?left=v{old}&amp;right=v{new}" in stable
    assert f"Compare behaviour with v{old}" in stable


def test_the_api_returns_the_same_diff_as_json(
    agent: Agent, owner: Any, releases: tuple[int, int]
) -> None:
    response = _api(owner).get(
        f"/behaviour-diff/{agent.slug}?left=v{releases[0]}&right=v{releases[1]}"
    )
    assert response.status_code == 200
    found = response.json()
    assert (found["left"]["version"], found["right"]["version"]) == releases
    assert found["left"]["decisions"] == found["right"]["decisions"] == 300
    assert found["min_sample"] == 30 and found["alpha"] == 0.01
    flagged = {(row["kind"], row["name"]) for row in found["flagged"]}
    assert {("decision", "denied"), ("action", "payments.wire")} <= flagged
    assert found["only"]["right"]["actions"] == ["payments.wire"]
    wire = next(row for row in found["actions"] if row["name"] == "payments.wire")
    assert wire["left"]["hits"] == 0 and wire["right"]["hits"] > 30
    assert wire["significance"]["p_value"] <= wire["p_adjusted"] <= 0.01
    assert wire["explain"].startswith("action payments.wire: 0.0% (0 of 300) → ")
    amount = next(row for row in found["params"] if row["key"] == "amount")
    assert amount["left"]["count"] == 300 and amount["significance"]["test"] == (
        "kolmogorov-smirnov"
    )
    page = _page(owner, agent.slug, left=f"v{releases[0]}", right=f"v{releases[1]}")
    assert [r["label"] for r in page.context["rows"]["flagged"]] == [
        f"{row['kind']} {row['name']}" if row["kind"] != row["name"] else row["name"]
        for row in found["flagged"]
    ]


def test_the_api_refuses_a_bad_side_with_what_is_wrong(
    agent: Agent, owner: Any, releases: tuple[int, int]
) -> None:
    response = _api(owner).get(f"/behaviour-diff/{agent.slug}?left=v{releases[0]}&right=v7")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"] == "Right: Refund bot has no release v7."
    assert error["fields"] == {"right": ["Right: Refund bot has no release v7."]}
    missing = _api(owner).get(f"/behaviour-diff/{agent.slug}?left=v{releases[0]}")
    assert missing.status_code == 422 and "right" in missing.json()["error"]["fields"]


def test_the_api_answers_404_for_an_agent_the_person_may_not_view(
    agent: Agent, outsider: Any, releases: tuple[int, int]
) -> None:
    response = _api(outsider).get(
        f"/behaviour-diff/{agent.slug}?left=v{releases[0]}&right=v{releases[1]}"
    )
    assert response.status_code == 404
    assert _api(outsider).get("/behaviour-diff/no-such-agent?left=v1&right=v2").status_code == 404
    agent_token = AgentApi(
        Client(), token_create(actor=SYSTEM, agent=agent, environment="production")[1]
    )
    assert (
        agent_token.get(
            f"/behaviour-diff/{agent.slug}?left=v{releases[0]}&right=v{releases[1]}"
        ).status_code
        == 401
    )
