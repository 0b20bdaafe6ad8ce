"""An owner records how an action ended that its agent never reported, from the action's
page: one it was allowed to run, or an approved one it started. Until then the agent's
identical calls are told it may have run; once recorded, it is final, audited with the
person and what they checked, and the agent's late report is refused."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db.models import F
from django.test import Client
from django.urls import reverse

from oversight.agents.services import agent_access_grant
from oversight.approvals.services import approval_vote
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.gateway.models import Action
from oversight.gateway.settling import action_settle
from oversight.policy.models import LimitCounter
from oversight.reviews.services import agent_retire
from tests.conftest import SYSTEM
from tests.gateway.helpers import AgentApi, RefundPolicy, api_error, limit_create, refund

pytestmark = pytest.mark.django_db

SETTLE_FORM = b'id="settle"'


def _page(user: Any) -> Client:
    page = Client()
    page.force_login(user)
    return page


def _settle(page: Client, action_id: str, outcome: str, note: str) -> Any:
    url = reverse("approvals:settle", args=[action_id])
    return page.post(url, {"outcome": outcome, "note": note}, follow=True)


def _said(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _aged(decision: dict[str, Any]) -> dict[str, Any]:
    """The action as if it was asked (and started) two minutes ago: past SETTLE_AFTER."""
    ago = dt.timedelta(minutes=2)
    Action.objects.filter(pk=decision["id"]).update(created_at=F("created_at") - ago)
    Action.objects.filter(pk=decision["id"], started_at__isnull=False).update(
        started_at=F("started_at") - ago
    )
    return decision


def _allowed(api: AgentApi, **fields: Any) -> dict[str, Any]:
    return _aged(api.decide(refund(10, **fields)))


def _started(api: AgentApi, agent: Any, reviewer: Any) -> dict[str, Any]:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    held = api.decide(refund(900))
    approval_vote(user=reviewer, action_id=held["id"], vote="approve")
    assert api.post(f"/actions/{held['id']}/start", {}).status_code == 200
    return _aged(held)


def test_an_owner_records_that_an_allowed_action_ran(
    api: AgentApi, policy: RefundPolicy, owner: Any
) -> None:
    allowed = _allowed(api)
    page = _page(owner)
    shown = page.get(reverse("approvals:action", args=[allowed["id"]])).content
    assert SETTLE_FORM in shown and b"Its outcome has not been reported" in shown

    note = "The refund re_1 exists in Stripe for 10.00"
    response = _settle(page, allowed["id"], "succeeded", note)
    assert _said(response) == ["Recorded: it ran and succeeded."]
    action = Action.objects.get(pk=allowed["id"])
    assert (action.status, action.error) == ("succeeded", "")
    assert action.finished_at is not None
    (event,) = AuditEvent.objects.filter(verb="action.reported")
    assert (event.actor_label, event.target_id) == (owner.username, allowed["id"])
    assert event.before == {"status": "allowed"}
    assert event.after == {
        "status": "succeeded",
        "why": note,
        "recorded_by_a_person": "It ran and succeeded",
    }
    # Its story says who recorded it and what they checked; the form is gone.
    told = "(it ran and succeeded, recorded by a person): " + note
    assert told.encode() in response.content and SETTLE_FORM not in response.content
    # The agent's late report is refused, and changes nothing.
    late = api.post(f"/actions/{allowed['id']}/result", {"outcome": "failed", "error": "x"})
    api_error(late, 409, "already_reported")
    assert Action.objects.get(pk=allowed["id"]).status == "succeeded"


def test_a_started_action_that_did_not_run_is_cancelled_and_gives_back_its_quota(
    api: AgentApi, policy: RefundPolicy, agent: Any, owner: Any, reviewer: Any
) -> None:
    limit_create(agent=agent, max_count=5)
    held = _started(api, agent, reviewer)
    assert LimitCounter.objects.get().count == 1
    page = _page(owner)
    shown = page.get(reverse("approvals:action", args=[held["id"]])).content
    assert b"The agent started it and has not said what happened" in shown

    response = _settle(page, held["id"], "not_run", "  No refund for ch_1 in Stripe  ")
    assert _said(response) == ["Recorded: it did not run."]
    action = Action.objects.get(pk=held["id"])
    assert (action.status, action.error) == ("cancelled", "No refund for ch_1 in Stripe")
    assert LimitCounter.objects.get().count == 0
    (event,) = AuditEvent.objects.filter(verb="action.cancelled")
    assert event.before == {"status": "approved"}
    assert event.after["status"] == "cancelled"
    assert event.after["recorded_by_a_person"] == "It did not run"
    # The agent reading it learns it ended without running, and what the owner found.
    read = api.get(f"/actions/{held['id']}").json()
    assert (read["status"], read["error"]) == ("cancelled", "No refund for ch_1 in Stripe")


def test_a_failure_keeps_what_was_checked_as_its_error(
    api: AgentApi, policy: RefundPolicy, owner: Any
) -> None:
    allowed = _allowed(api)
    _settle(_page(owner), allowed["id"], "failed", "Stripe refused: charge disputed")
    action = Action.objects.get(pk=allowed["id"])
    assert (action.status, action.error) == ("failed", "Stripe refused: charge disputed")


TOO_LONG = "Not recorded: Say it in at most 1000 characters (this is 1001)."
CHOOSE = (
    "Not recorded: Choose what happened: It ran and succeeded; It ran and failed; It did not run."
)


@pytest.mark.parametrize(
    ("outcome", "note", "said"),
    [
        ("succeeded", "   ", "Not recorded: Say what you checked, so that others can rely on it."),
        ("", "checked", CHOOSE),
        ("rolled_back", "checked", CHOOSE),
        (
            "succeeded",
            "x" * 1001,
            "Not recorded: Say it in at most 1000 characters (this is 1001).",
        ),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    api: AgentApi, policy: RefundPolicy, owner: Any, outcome: str, note: str, said: str
) -> None:
    allowed = _allowed(api)
    before = AuditEvent.objects.count()
    response = _settle(_page(owner), allowed["id"], outcome, note)
    assert _said(response) == [said]
    assert Action.objects.get(pk=allowed["id"]).status == "allowed"
    assert AuditEvent.objects.count() == before


def test_only_an_action_that_may_have_run_unreported_can_be_settled(
    api: AgentApi, policy: RefundPolicy, agent: Any, owner: Any, reviewer: Any
) -> None:
    page = _page(owner)
    held = api.decide(refund(900))  # pending
    approved = api.decide(refund(901, charges=("ch_2",)))
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    approval_vote(user=reviewer, action_id=approved["id"], vote="approve")  # not started
    reported = _allowed(api, charges=("ch_3",))
    api.post(f"/actions/{reported['id']}/result", {"outcome": "succeeded"})
    for action_id, status in [
        (held["id"], "pending"),
        (approved["id"], "approved"),
        (reported["id"], "succeeded"),
    ]:
        assert SETTLE_FORM not in page.get(reverse("approvals:action", args=[action_id])).content
        (message,) = _said(_settle(page, action_id, "succeeded", "checked"))
        assert message.startswith("Not recorded: Only an action that may have run")
        assert Action.objects.get(pk=action_id).status == status
    assert not AuditEvent.objects.filter(
        actor_label=owner.username, verb__startswith="action."
    ).exists()


def test_only_the_agents_owners_and_admins_may_settle(
    api: AgentApi,
    policy: RefundPolicy,
    agent: Any,
    reviewer: Any,
    outsider: Any,
    admin_user: Any,
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    allowed = _allowed(api)
    url = reverse("approvals:action", args=[allowed["id"]])
    assert SETTLE_FORM not in _page(reviewer).get(url).content
    assert _settle(_page(reviewer), allowed["id"], "succeeded", "checked").status_code == 403
    assert _settle(_page(outsider), allowed["id"], "succeeded", "checked").status_code == 404
    assert Client().post(reverse("approvals:settle", args=[allowed["id"]])).status_code == 302
    assert Action.objects.get(pk=allowed["id"]).status == "allowed"
    assert SETTLE_FORM in _page(admin_user).get(url).content


def test_a_retired_agents_owners_still_record_what_happened_to_its_actions(
    api: AgentApi, policy: RefundPolicy, agent: Any, owner: Any, reviewer: Any
) -> None:
    """Retiring leaves an action that may have run as it is, and the agent's token is
    revoked: nobody but a person can say what happened to it any more."""
    allowed = _allowed(api)
    started = _started(api, agent, reviewer)
    agent_retire(actor=Actor.for_user(owner), agent=agent, reason="replaced by v2")
    agent.refresh_from_db()
    assert agent.status == "retired"
    assert [a.status for a in Action.objects.order_by("created_at")] == ["allowed", "approved"]
    page = _page(owner)
    url = reverse("approvals:action", args=[started["id"]])
    assert SETTLE_FORM in page.get(url).content
    assert SETTLE_FORM not in _page(reviewer).get(url).content
    assert _settle(_page(reviewer), started["id"], "not_run", "checked").status_code == 403

    _settle(page, started["id"], "not_run", "No refund for ch_1 in Stripe")
    _settle(page, allowed["id"], "succeeded", "The refund exists")
    assert [a.status for a in Action.objects.order_by("created_at")] == ["succeeded", "cancelled"]
    assert (
        AuditEvent.objects.filter(
            verb__in=["action.reported", "action.cancelled"], actor_label=owner.username
        ).count()
        == 2
    )
    # The agent itself stays read-only.
    edit = reverse("agents:edit", args=[agent.slug])
    assert page.post(edit, {"name": "renamed"}).status_code == 403


def test_the_form_needs_its_csrf_token(api: AgentApi, policy: RefundPolicy, owner: Any) -> None:
    allowed = _allowed(api)
    page = Client(enforce_csrf_checks=True)
    page.force_login(owner)
    url = reverse("approvals:settle", args=[allowed["id"]])
    assert page.post(url, {"outcome": "succeeded", "note": "x"}).status_code == 403
    assert Action.objects.get(pk=allowed["id"]).status == "allowed"


def test_a_report_arriving_first_wins_and_the_settle_is_refused(
    api: AgentApi, policy: RefundPolicy, owner: Any
) -> None:
    allowed = _allowed(api)
    as_read = Action.objects.get(pk=allowed["id"])  # the page read it allowed
    api.post(f"/actions/{allowed['id']}/result", {"outcome": "failed", "error": "timeout"})
    with pytest.raises(ValidationError) as refused:
        action_settle(actor=Actor.for_user(owner), action=as_read, outcome="succeeded", note="ok")
    assert refused.value.code == "changed"
    action = Action.objects.get(pk=allowed["id"])
    assert (action.status, action.error) == ("failed", "timeout")
    assert not AuditEvent.objects.filter(actor_label=owner.username).exists()


def test_while_the_agent_may_still_be_running_it_the_page_says_when_to_come_back(
    api: AgentApi, policy: RefundPolicy, owner: Any
) -> None:
    allowed = api.decide(refund(10))  # just now
    page = _page(owner)
    shown = page.get(reverse("approvals:action", args=[allowed["id"]])).content.decode()
    assert "The agent may still be running it. If it has not reported by" in shown
    assert 'name="outcome"' not in shown
    (message,) = _said(_settle(page, allowed["id"], "succeeded", "checked"))
    assert message.startswith("Not recorded: The agent may still be running it: give it until")
    assert Action.objects.get(pk=allowed["id"]).status == "allowed"
    assert not AuditEvent.objects.filter(actor_label=owner.username).exists()


def test_line_breaks_count_once_as_the_browser_counts_them(
    api: AgentApi, policy: RefundPolicy, owner: Any
) -> None:
    """A browser sends each line break as CRLF, and its maxlength counts it as one."""
    allowed = _allowed(api)
    note = "\r\n".join(["x" * 99] * 10)  # 990 characters and 9 line breaks: 999 as typed
    response = _settle(_page(owner), allowed["id"], "succeeded", note)
    assert _said(response) == ["Recorded: it ran and succeeded."]
    (event,) = AuditEvent.objects.filter(verb="action.reported")
    assert event.after["why"] == note.replace("\r\n", "\n")


def test_a_refused_form_keeps_what_was_typed_and_says_why_by_its_field(
    api: AgentApi, policy: RefundPolicy, owner: Any
) -> None:
    allowed = _allowed(api)
    url = reverse("approvals:settle", args=[allowed["id"]])
    typed = "Stripe shows re_9 <b>twice</b>\x00"
    response = _page(owner).post(url, {"outcome": "failed", "note": typed})
    assert response.status_code == 422
    page = response.content.decode()
    assert "Null characters are not allowed." in page  # Django's own check, on the field
    assert 'value="failed" required id="id_outcome_1" checked' in page
    assert "Stripe shows re_9 &lt;b&gt;twice&lt;/b&gt;" in page
    assert Action.objects.get(pk=allowed["id"]).status == "allowed"

    response = _page(owner).post(url, {"outcome": "failed", "note": "  "})
    assert response.status_code == 422
    assert _said(response) == ["Not recorded: Say what you checked, so that others can rely on it."]
    assert not AuditEvent.objects.filter(actor_label=owner.username).exists()
