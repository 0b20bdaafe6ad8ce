"""Approved actions the agent started and never reported: past ten minutes, the agent's
people are alerted, with the actions as evidence, until someone records what happened."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from oversight.agents.services import token_create
from oversight.approvals.services import approval_vote
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.gateway.lifecycle import ResultInput, action_report_result, action_start
from oversight.gateway.models import Action
from oversight.gateway.settling import SETTLE_AFTER, action_settle
from oversight.monitoring.constants import AlertKind, Severity
from oversight.monitoring.jobs import monitoring_run
from oversight.monitoring.models import Alert
from oversight.monitoring.services import alert_resolve
from oversight.monitoring.unreported import unreported_actions, unreported_findings
from oversight.notifications.models import InboxItem
from oversight.reviews.services import agent_retire
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, hold_large_refunds, refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(agent: Any, refunds: Any) -> Any:
    hold_large_refunds(agent)
    return token_create(actor=SYSTEM, agent=agent, environment="production")[0]


def _approved(token: Any, rita: Any, charge: str, *, start: bool = True) -> Action:
    held = decide(token, refund(900, charges=(charge,)))
    approval_vote(user=rita, action_id=held.pk, vote="approve")
    return action_start(token=token, action_id=held.pk) if start else Action.objects.get(pk=held.pk)


def _report(token: Any, action: Action, outcome: str) -> None:
    action_report_result(token=token, action_id=action.pk, data=ResultInput(outcome=outcome))


def _later(minutes: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=minutes)


def test_a_started_action_never_reported_raises_one_warning_after_ten_minutes(
    agent: Any, token: Any, rita: Any, owner: Any
) -> None:
    started = _approved(token, rita, "ch_1")
    _approved(token, rita, "ch_2", start=False)  # approved, not started: it has not run
    decide(token, refund(10, charges=("ch_3",)))  # allowed, not reported: not alerted on
    monitoring_run(now=_later(9))
    assert not Alert.objects.exists()

    monitoring_run(now=_later(11))
    (alert,) = Alert.objects.all()
    assert (alert.agent, alert.kind, alert.severity) == (
        agent,
        AlertKind.UNREPORTED,
        Severity.WARNING,
    )
    assert alert.title == (
        "1 action the agent may have run and never reported: an owner records what happened"
    )
    assert alert.evidence["unreported_actions"] == 1
    assert alert.evidence["oldest_minutes_ago"] in (10, 11)
    assert [a["id"] for a in alert.evidence["actions"]] == [str(started.pk)]
    told = set(
        InboxItem.objects.filter(kind="alert.opened").values_list("user__username", flat=True)
    )
    assert {owner.username, rita.username} <= told

    # The alert's page leads to the action, whose page asks the owner what happened.
    page = Client()
    page.force_login(owner)
    body = page.get(reverse("monitoring:alert", args=[alert.pk])).content.decode()
    assert reverse("approvals:action", args=[started.pk]) in body
    action_page = page.get(reverse("approvals:action", args=[started.pk])).content
    assert b"Its outcome has not been reported" in action_page


def _settle(owner: Any, action: Action, outcome: str = "succeeded") -> None:
    Action.objects.filter(pk=action.pk).update(started_at=F("started_at") - SETTLE_AFTER)
    action.refresh_from_db()  # past the agent's own time to report
    action_settle(actor=Actor.for_user(owner), action=action, outcome=outcome, note="checked")


def test_it_lists_what_is_left_and_resolves_itself_once_every_action_is_settled(
    agent: Any, token: Any, rita: Any, owner: Any
) -> None:
    first = _approved(token, rita, "ch_1")
    second = _approved(token, rita, "ch_2")
    monitoring_run(now=_later(11))
    monitoring_run(now=_later(12))
    (alert,) = Alert.objects.all()
    assert alert.count == 2 and alert.evidence["unreported_actions"] == 2
    assert alert.title.startswith("2 actions the agent may have run and never reported")

    _settle(owner, first, "not_run")
    monitoring_run(now=_later(13))
    alert.refresh_from_db()
    assert alert.title.startswith("1 action the agent may have run and never reported")
    assert [a["id"] for a in alert.evidence["actions"]] == [str(second.pk)]  # not merged

    _settle(owner, second)
    result = monitoring_run(now=_later(14))
    alert.refresh_from_db()
    assert (result.resolved, alert.status, alert.resolved_by) == (1, "resolved", None)
    event = AuditEvent.objects.get(verb="alert.resolved")
    assert (event.actor_label, event.after["why"]) == (
        "system:monitoring",
        "every action it listed has been settled",
    )
    page = Client()
    page.force_login(owner)
    body = page.get(reverse("monitoring:alert", args=[alert.pk])).content.decode()
    assert alert.resolved_why == "every action it listed has been settled"
    assert "by monitoring, its condition cleared (every action it listed has been settled)" in body
    monitoring_run(now=_later(30))
    assert Alert.objects.count() == 1


def test_an_allowed_action_its_agent_said_it_reports_is_alerted_on_until_reported(
    agent: Any, token: Any, rita: Any
) -> None:
    """The SDK's guard, oversight-mcp and the adapters say they report (reports_outcome);
    an agent using the API without saying so is not alerted on for its allowed actions."""
    said = decide(token, refund(10, charges=("ch_1",), reports_outcome=True))
    decide(token, refund(20, charges=("ch_2",)))  # not said: the API allows it
    reported = decide(token, refund(30, charges=("ch_3",), reports_outcome=True))
    _report(token, reported, "succeeded")
    started = _approved(token, rita, "ch_4")
    assert Action.objects.get(pk=said.pk).reports_outcome is True

    monitoring_run(now=_later(9))
    assert not Alert.objects.exists()
    monitoring_run(now=_later(11))
    (alert,) = Alert.objects.all()
    assert alert.evidence["unreported_actions"] == 2
    listed = {a["id"]: a for a in alert.evidence["actions"]}
    assert set(listed) == {str(said.pk), str(started.pk)}
    assert listed[str(said.pk)]["status"] == "allowed"
    assert listed[str(said.pk)]["at"] == said.created_at.astimezone(dt.UTC).isoformat()

    _report(token, said, "failed")
    monitoring_run(now=_later(12))
    alert.refresh_from_db()
    assert [a["id"] for a in alert.evidence["actions"]] == [str(started.pk)]


@pytest.mark.postgres
def test_both_kinds_are_read_through_their_partial_indexes(agent: Any, token: Any) -> None:
    decide(token, refund(10, reports_outcome=True))
    with connection.cursor() as cursor:  # a table this small would be read whole
        cursor.execute("SET enable_seqscan = off")
        plan = unreported_actions(cutoff=_later(11)).explain()
        cursor.execute("RESET enable_seqscan")
    assert "action_started_unreported" in plan and "action_allowed_unreported" in plan, plan


def test_a_retired_agents_started_actions_stay_alerted_on_until_an_owner_settles_them(
    agent: Any, token: Any, rita: Any, owner: Any
) -> None:
    """Retiring revokes the agent's token, so it can never report them; its owners still
    may say what happened (gateway/settling.py)."""
    started = _approved(token, rita, "ch_1")
    monitoring_run(now=_later(11))
    (alert,) = Alert.objects.all()
    agent_retire(actor=Actor.for_user(owner), agent=agent, reason="replaced")
    monitoring_run(now=_later(12))
    alert.refresh_from_db()
    assert alert.status == "open"
    assert [a["id"] for a in alert.evidence["actions"]] == [str(started.pk)]
    Action.objects.filter(pk=started.pk).update(started_at=F("started_at") - SETTLE_AFTER)
    started.refresh_from_db()
    action_settle(
        actor=Actor.for_user(owner), action=started, outcome="failed", note="no refund made"
    )
    monitoring_run(now=_later(13))
    alert.refresh_from_db()
    assert alert.status == "resolved"
    why = AuditEvent.objects.get(verb="alert.resolved").after["why"]
    assert why == "every action it listed has been settled"


def test_an_alert_resolved_with_actions_still_unreported_comes_back_after_the_window(
    agent: Any, token: Any, rita: Any, owner: Any
) -> None:
    _approved(token, rita, "ch_1")
    monitoring_run(now=_later(11))
    (alert,) = Alert.objects.all()
    alert_resolve(user=owner, alert_id=alert.pk, now=_later(12))
    monitoring_run(now=_later(13))  # within the window the person saw: not raised again
    assert Alert.objects.count() == 1
    monitoring_run(now=_later(20))
    again = Alert.objects.exclude(pk=alert.pk).get()
    assert again.kind == AlertKind.UNREPORTED and again.status == "open"


def test_the_search_is_two_queries_whatever_the_number_of_actions(
    agent: Any, token: Any, rita: Any
) -> None:
    for n in range(5):
        _approved(token, rita, f"ch_{n}")
    with CaptureQueriesContext(connection) as queries:
        (finding,) = unreported_findings(now=_later(11))
    assert len(queries) == 2  # the counts per agent, then each agent's evidence
    assert finding.numbers["unreported_actions"] == 5 and len(finding.actions) == 5
