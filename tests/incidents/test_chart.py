"""The behaviour chart of an incident's page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.agents.models import Agent
from oversight.incidents.charts import series_chart
from oversight.incidents.models import TriggerKind
from oversight.incidents.services import incident_analyse, incident_open
from tests.conftest import SYSTEM


def _row(at: str, allowed: int = 0, denied: int = 0) -> dict[str, Any]:
    return {"at": at, "actions": allowed + denied, "allowed": allowed, "denied": denied}


def test_bars_are_scaled_to_the_busiest_bucket_which_the_chart_names() -> None:
    chart = series_chart({"series": [_row("t1", 2), _row("t2", 3, 1)], "break": None})
    assert chart is not None and chart["peak"] == 4
    assert min(bar["y"] for bar in chart["bars"]) == 0  # the busiest bucket's top


@pytest.mark.django_db
def test_a_window_without_actions_says_so_not_a_peak_of_one(agent: Agent, owner: Any) -> None:
    incident, _ = incident_open(
        actor=SYSTEM,
        kind=TriggerKind.MANUAL,
        target=("agents.agent", str(agent.pk)),
        summary="quiet, but worried",
        agent=agent,
    )
    incident_analyse(incident_id=incident.pk)
    client = Client()
    client.force_login(owner)
    page = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert "no action in the window" in page
    assert "peak 1 per bucket" not in page


@pytest.mark.django_db
def test_the_blast_radius_says_what_of_it_can_be_undone_in_words(agent: Agent, owner: Any) -> None:
    """ "52 of 58 (6 reads: nothing to undo; 52 reversible)", not "(6 read, 52 reversible)"
    (which read as if the reads could not be undone)."""
    from oversight.incidents.models import AnalysisState, Incident

    incident, _ = incident_open(
        actor=SYSTEM,
        kind=TriggerKind.MANUAL,
        target=("agents.agent", str(agent.pk)),
        summary="refunds",
        agent=agent,
    )
    blast = {
        "since": "2026-12-07T00:00:00+00:00",
        "until": "2026-12-07T00:10:00+00:00",
        "actions": 58,
        "by_status": {"rolled_back": 13, "succeeded": 45},
        "took_effect": 58,
        "reversible": 52,
        "reversibility": {"read": 6, "reversible": 52},
        "rolled_back": 13,
        "amounts": [{"action": "payments.refund", "currency": "usd", "sum": "23548"}],
    }
    Incident.objects.filter(pk=incident.pk).update(
        report={"blast_radius": blast, "causes": [], "timeline": [], "series": []},
        analysis_state=AnalysisState.DONE,
    )
    client = Client()
    client.force_login(owner)
    page = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert "52 of 58 (6 reads: nothing to undo; 52 reversible)" in page
    assert "13 rolled back" in page and "rolled_back" not in page.split("blast-actions", 1)[1][:200]
    assert "payments.refund: 23,548 USD" in page
