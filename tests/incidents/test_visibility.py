"""Who sees a team's or everyone's incident: its report is about every agent of its scope
together, so only those who may view every one of them (and admins). Bob owns an agent of
payments but is not in the team: he may not view refund-bot, so the team's incident, with
refund-bot's refunds in its blast radius, is not his to see on any route."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.accounts.services import personal_token_create, team_add_member, team_create
from oversight.agents.models import Agent
from oversight.agents.services import agent_create, agent_update, token_create
from oversight.audit.actors import Actor
from oversight.incidents.models import Incident
from oversight.incidents.services import incident_analyse
from oversight.killswitch.selectors import Target
from oversight.killswitch.services import killswitch_engage
from tests.conftest import SYSTEM, make_user
from tests.gateway.helpers import decide, grant_refunds, refund

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture
def bob(django_user_model: Any) -> Any:
    """In team support, not payments; owns mega, an agent of payments."""
    bob = make_user(django_user_model, "bob", "owner")
    team_add_member(actor=SYSTEM, team=team_create(actor=SYSTEM, name="support"), user=bob)
    return bob


@pytest.fixture
def mega(team: Any, bob: Any) -> Agent:
    return agent_create(
        actor=SYSTEM, name="Mega", slug="mega", purpose="Does much.", owner=bob, team=team
    )


@pytest.fixture
def team_incident(agent: Agent, mega: Agent, admin_user: Any) -> Incident:
    """Refund-bot refunded 28782 USD; then an admin stops the whole team."""
    grant_refunds(agent)
    decide(token_create(actor=SYSTEM, agent=agent, environment="production")[0], refund(28782))
    target = Target(scope="team", team=agent.team)
    killswitch_engage(actor=Actor.for_user(admin_user), target=target, reason="payments")
    incident = incident_analyse(incident_id=Incident.objects.get(scope="team").pk)
    assert incident is not None
    assert "28782" in str(incident.report["blast_radius"]["amounts"])
    return incident


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api(user: Any) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {personal_token_create(user=user, name='t')[1]}")


def _routes(pk: int) -> list[str]:
    return [
        reverse("incidents:detail", args=[pk]),
        reverse("incidents:export", args=[pk, "json"]),
        reverse("incidents:export", args=[pk, "md"]),
    ]


def _sees(user: Any, incident: Incident) -> bool:
    """Every route agrees: the page, its fragment, the exports, the list, the API."""
    browser, api = _client(user), _api(user)
    pages = [browser.get(url).status_code for url in _routes(incident.pk)]
    pages.append(browser.get(_routes(incident.pk)[0], headers=HX).status_code)
    listed = (
        f"INC-{incident.pk}<"
        in browser.get(reverse("incidents:list"), {"status": ""}).content.decode()
    )
    api_get = api.get(f"/api/v1/incidents/{incident.pk}").status_code
    api_listed = incident.pk in [i["id"] for i in api.get("/api/v1/incidents?status=").json()]
    answers = {*pages, api_get}
    assert answers in ({200}, {404}), answers  # never some routes and not others
    assert listed == api_listed == (answers == {200})
    return answers == {200}


def test_bob_sees_nothing_of_a_team_incident_with_an_agent_he_may_not_view(
    team_incident: Incident, bob: Any, mega: Agent, owner: Any, admin_user: Any
) -> None:
    assert _client(bob).get(reverse("agents:detail", args=["refund-bot"])).status_code == 404
    assert not _sees(bob, team_incident)
    assert _api(bob).post(f"/api/v1/incidents/{team_incident.pk}/analyse").status_code == 404
    # Alice is in payments: she may view refund-bot and mega, so the whole team.
    assert _sees(owner, team_incident)
    assert _sees(admin_user, team_incident)
    # Bob's own agent's incidents are his.
    mine = _api(bob).post("/api/v1/incidents", {"agent": "mega"}, content_type="application/json")
    assert mine.status_code == 201
    assert _sees(bob, Incident.objects.get(pk=mine.json()["id"]))


def test_everyones_incident_is_for_those_who_may_view_every_agent(
    agent: Agent, mega: Agent, bob: Any, owner: Any, other_agent: Agent, admin_user: Any
) -> None:
    killswitch_engage(actor=Actor.for_user(admin_user), target=Target(scope="global"), reason="x")
    incident = incident_analyse(incident_id=Incident.objects.get(scope="global").pk)
    assert incident is not None
    assert not _sees(bob, incident)
    assert not _sees(owner, incident)  # she may not view email-campaigner
    assert _sees(admin_user, incident)


def test_an_agent_moved_out_of_the_team_keeps_its_report_hidden_until_analysed_again(
    team_incident: Incident, agent: Agent, mega: Agent, owner: Any, other_team: Any
) -> None:
    """Mega moves to growth: Alice no longer may view it, and the report, analysed while
    it was in payments, holds its data; analysed again, it is of payments' agents now."""
    assert set(team_incident.covered.all()) == {agent, mega}
    agent_update(actor=SYSTEM, agent=mega, team=other_team)
    assert not _sees(owner, team_incident)
    incident_analyse(incident_id=team_incident.pk)
    assert set(team_incident.covered.all()) == {agent}
    assert _sees(owner, team_incident)


def test_bob_is_told_the_team_incident_exists_and_whom_to_ask_without_its_content(
    team_incident: Incident,
    bob: Any,
    mega: Agent,
    owner: Any,
    admin_user: Any,
    django_user_model: Any,
) -> None:
    """The kill switch's banner over mega says "See the incident": bob's list names it,
    with nothing of its report, instead of leaving him a list without it."""
    Incident.objects.filter(pk=team_incident.pk).update(owner=admin_user)
    page = _client(bob).get(reverse("incidents:list")).content.decode()
    assert "Also about agents you may not view" in page
    assert f"INC-{team_incident.pk}, team payments:" in page
    assert "owner " + (admin_user.get_full_name() or admin_user.get_username()) in page
    assert "No incidents open that you may read." in page
    assert team_incident.title not in page and "28782" not in page
    assert reverse("incidents:detail", args=[team_incident.pk]) not in page
    for reader in (owner, admin_user):  # those who read it find it in the list itself
        listed = _client(reader).get(reverse("incidents:list")).content.decode()
        assert f"INC-{team_incident.pk}<" in listed
        assert "Also about agents you may not view" not in listed
    # Someone who may view none of the team's agents is not told of it at all.
    stranger = make_user(django_user_model, "stranger", "reviewer")
    assert (
        f"INC-{team_incident.pk}"
        not in _client(stranger).get(reverse("incidents:list")).content.decode()
    )
