"""How causes are told: without a break, from the incident's opening and with no strength
"at the break"; durations to the second under ten minutes; and the list marks a cause
that no clear break backs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from oversight.agents.models import Agent
from oversight.agents.services import token_create
from oversight.audit.models import AuditEvent
from oversight.incidents.analysis.causes import span
from oversight.incidents.models import AnalysisState, Incident, TriggerKind
from oversight.incidents.services import incident_analyse, incident_open
from tests.conftest import SYSTEM
from tests.gateway.helpers import grant_refunds
from tests.incidents.helpers import small_refund, traffic

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (59.6, "1 min"),
        (79, "1 min 19 s"),
        (165, "2 min 45 s"),
        (599, "9 min 59 s"),
        (629, "10 min"),
        (630, "11 min"),
        (-79, "1 min 19 s"),
    ],
)
def test_a_span_reads_to_the_second_under_ten_minutes(seconds: float, shown: str) -> None:
    assert span(seconds) == shown


def _opened_after_the_grant(agent: Agent, seconds: int) -> Incident:
    """A grant, five refunds in its minute (too few to split), and an incident opened
    ``seconds`` after the grant."""
    grant_refunds(agent)
    granted = AuditEvent.objects.filter(verb="grant.created").latest("seq").created_at
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    traffic(token, small_refund, 5, seed=4)
    incident, _ = incident_open(
        actor=SYSTEM,
        kind=TriggerKind.MANUAL,
        target=("agents.agent", str(agent.pk)),
        summary="refunds look wrong",
        agent=agent,
    )
    Incident.objects.filter(pk=incident.pk).update(
        opened_at=granted + dt.timedelta(seconds=seconds)
    )
    analysed = incident_analyse(incident_id=incident.pk)
    assert analysed is not None
    return analysed


def test_without_a_break_causes_are_told_from_the_opening_not_a_break(
    agent: Agent, owner: Any
) -> None:
    incident = _opened_after_the_grant(agent, 79)
    report = incident.report
    assert report["break"] is None and report["likely_cause"] is None
    grant = next(c for c in report["causes"] if "grant created" in c["summary"])
    assert grant["why"] == [
        "made 1 min 19 s before the incident opened",
        "touches payments.refund",
    ]
    assert grant["effect"] == 0 and grant["minutes_before_break"] is None
    assert grant["minutes_before_opening"] == pytest.approx(79 / 60, abs=0.01)
    for cause in report["causes"]:
        assert not any("break" in why for why in cause["why"]), cause["why"]

    client = Client()
    client.force_login(owner)
    page = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert "Too little traffic in the window to find when behaviour changed" in page
    assert "made 1 min 19 s before the incident opened" in page
    assert "before the break" not in page and "strength" not in page


def _listed(agent: Agent, title: str, report: dict[str, Any]) -> None:
    incident, _ = incident_open(
        actor=SYSTEM,
        kind=TriggerKind.MANUAL,
        target=("agents.agent", str(agent.pk)),
        summary=title,
        agent=agent,
    )
    Incident.objects.filter(pk=incident.pk).update(report=report, analysis_state=AnalysisState.DONE)


def test_the_list_marks_a_cause_no_clear_break_backs(agent: Agent, owner: Any) -> None:
    cause = {"summary": "rule deleted: one charge at a time"}
    _listed(agent, "clear", {"causes": [cause], "likely_cause": cause})
    _listed(agent, "weak", {"causes": [{"summary": "grant created: payments.refund"}]})
    client = Client()
    client.force_login(owner)
    page = client.get(reverse("incidents:list")).content.decode()
    rows = {row.split("</a> ", 1)[1].split("</td>", 1)[0]: row for row in page.split("<tr>")[2:]}
    assert "rule deleted: one charge at a time" in rows["clear"]
    assert "low confidence" not in rows["clear"]
    assert "grant created: payments.refund" in rows["weak"]
    assert "low confidence" in rows["weak"]


def test_a_causes_before_and_after_leave_out_the_bucket_it_was_made_in() -> None:
    """A change made 16 s into a minute: that minute holds actions from both sides of it
    (here, a new agent's first 28), so neither column counts them."""
    from collections import Counter

    from oversight.incidents.analysis.causes import _evidence
    from oversight.incidents.analysis.changepoint import Bucket, split_at
    from oversight.incidents.analysis.changes import Change
    from oversight.incidents.analysis.series import Series, category

    start = dt.datetime(2026, 12, 7, 0, 0, tzinfo=dt.UTC)
    allowed = category("crm.contact.update", "allowed", "allowed")
    denied = category("crm.contact.update", "denied", "denied")
    counts = [(0, 10), (0, 10), (28, 5), (30, 0), (31, 0)]
    series = Series(start, 60, [Bucket(Counter({allowed: a, denied: d})) for a, d in counts])
    made = start + dt.timedelta(minutes=2, seconds=16)  # in the bucket of 28
    change = Change(at=made, actor="admin", events=[], agent_id=1, touches={"crm.contact.update"})
    index = series.index_of(made)
    assert index == 3
    rows = {row["what"]: row for row in _evidence(change, series, split_at(series.buckets, index))}
    assert (rows[allowed]["before"], rows[allowed]["after"]) == (0, 61)
    assert (rows[denied]["before"], rows[denied]["after"]) == (20, 0)


def test_a_change_without_words_of_its_own_is_named_in_words() -> None:
    """ "agent created: Refund bot", not the verb "agent.created: …"."""
    from oversight.audit.models import AuditEvent as Event
    from oversight.incidents.analysis.changes import _event

    made = Event(verb="agent.created", target_label="Refund bot", before=None, after=None)
    assert _event(made)[2] == "agent created: Refund bot"
    retired = Event(verb="agent.retirement_notice_given", target_label="Mail bot")
    assert _event(retired)[2] == "agent retirement notice given: Mail bot"
    # A rollback's event names the release it made: said as what it did.
    rollback = Event(
        verb="release.rolled_back",
        target_label="refund-bot v4",
        before={"rolled_back_to": 2},
        after={"version": 4},
    )
    assert _event(rollback)[2] == "rollback to v2, as refund-bot v4"


def test_without_a_clear_break_the_compare_link_does_not_speak_of_the_break() -> None:
    """The page said "No clear change in behaviour" and linked "before and after the
    break" in the next line."""
    from django.template.loader import render_to_string

    def rendered(clear: bool) -> str:
        report = {
            "break": {"clear": clear, "at": "2026-12-07T08:03:32+00:00", "what_changed": []},
            "behaviour_diff": [{"url": "/x/", "name": "Refund bot", "agent": "refund-bot"}],
            "window": {"start": "", "end": "", "bucket_seconds": 10},
        }
        return render_to_string("incidents/_analysis.html", {"report": report, "incident": {}})

    assert "Compare Refund bot's behaviour before and after the break</a>" in rendered(True)
    weak = rendered(False)
    assert "No clear change in behaviour" in weak and "the break" not in weak
    assert "Compare Refund bot's behaviour before and after 08:03:32 (the weak change)" in weak
