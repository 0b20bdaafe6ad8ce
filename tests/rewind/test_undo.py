"""Undo of one action: a compensation decided like any action, run by the agent's
compensator, reported honestly; the original rolled back only when its state is restored."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oversight.agents.models import Agent
from oversight.agents.services import agent_access_grant, token_create
from oversight.approvals.services import approval_vote
from oversight.audit.actors import Actor
from oversight.audit.models import AuditEvent
from oversight.gateway.exceptions import ConflictError
from oversight.gateway.lifecycle import ResultInput, action_report_result
from oversight.gateway.models import Action
from oversight.policy.models import Grant, Rule
from oversight.policy.services import policy_object_create
from oversight.rewind.services import Report, action_undo, compensation_report, compensations_claim
from tests.conftest import SYSTEM
from tests.gateway.helpers import decide, grant_reversible_refunds, refund, standby_reviewer

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(agent: Agent) -> Any:
    grant_reversible_refunds(agent, {"charge": "params.charges[0]", "amount": "params.amount"})
    return token_create(actor=SYSTEM, agent=agent, environment="production")[0]


def _refunded(token: Any, amount: int = 40) -> Action:
    """A refund the agent ran: its state went from nothing refunded to ``amount``."""
    action = decide(token, refund(amount, before={"refunded": 0}))
    data = ResultInput(outcome="succeeded", after={"refunded": amount})
    return action_report_result(token=token, action_id=action.pk, data=data)


def test_an_undone_refund_is_rolled_back(agent: Agent, owner: Any, production: Any) -> None:
    original = _refunded(production)
    compensation = action_undo(actor=Actor.for_user(owner), action=original)
    assert (compensation.status, compensation.compensates_id) == ("allowed", original.pk)
    assert (compensation.action, compensation.resource) == ("payments.charge", original.resource)
    assert compensation.params == {"charge": "ch_1", "amount": 40}
    assert compensation.parent_id == original.pk and compensation.token.name == "undo (Oversight)"

    assert [c.pk for c in compensations_claim(token=production)] == [compensation.pk]
    assert compensations_claim(token=production) == []  # held for the first worker
    report = Report("undone", found={"refunded": 40}, left={"refunded": 0})
    done = compensation_report(token=production, action_id=compensation.pk, report=report)
    original.refresh_from_db()
    assert (done.status, done.compensation_outcome) == ("succeeded", "undone")
    assert original.status == "rolled_back"
    verbs = set(AuditEvent.objects.values_list("verb", flat=True))
    assert {"undo.requested", "undo.reported", "undo.rolled_back"} <= verbs
    with pytest.raises(ConflictError):
        compensation_report(token=production, action_id=compensation.pk, report=report)


def test_a_contact_edit_is_undone_by_writing_back_its_whole_before(
    agent: Agent, owner: Any
) -> None:
    """As the demo's CRM updater's grant has it (``fields: before``): the undo's decision
    raised on CEL's objects for the map's values (a 500 for the owner)."""
    policy_object_create(
        actor=SYSTEM,
        obj=Grant(
            agent=agent,
            action="crm.contact.update",
            resource="crm:contact/*",
            reversibility="reversible",
            undo_action="crm.contact.update",
            undo_params={"fields": "before"},
            undo_window_seconds=3600,
        ),
    )
    token = token_create(actor=SYSTEM, agent=agent, environment="production")[0]
    before = {"email": "old@example.com", "tags": ["vip"], "score": 2.5}
    edit = {"action": "crm.contact.update", "resource": "crm:contact/7"}
    action = decide(token, {**edit, "params": {"email": "new@example.com"}, "before": before})
    data = ResultInput(outcome="succeeded", after={**before, "email": "new@example.com"})
    original = action_report_result(token=token, action_id=action.pk, data=data)
    compensation = action_undo(actor=Actor.for_user(owner), action=original)
    assert compensation.status == "allowed"
    assert compensation.params == {"fields": before}


def test_a_conflict_changes_nothing_and_the_original_stays_as_it_was(
    agent: Agent, owner: Any, production: Any
) -> None:
    original = _refunded(production)
    compensation = action_undo(actor=Actor.for_user(owner), action=original)
    report = Report("conflict", found={"refunded": 55}, detail="changed by hand")
    done = compensation_report(token=production, action_id=compensation.pk, report=report)
    original.refresh_from_db()
    assert (done.status, done.compensation_outcome) == ("failed", "conflict")
    assert done.compensation_found == {"refunded": 55}
    assert original.status == "succeeded"


def test_undone_to_another_state_is_not_shown_as_rolled_back(
    agent: Agent, owner: Any, production: Any
) -> None:
    original = _refunded(production)
    compensation = action_undo(actor=Actor.for_user(owner), action=original)
    report = Report("undone", found={"refunded": 40}, left={"refunded": 5})
    compensation_report(token=production, action_id=compensation.pk, report=report)
    original.refresh_from_db()
    assert original.status == "succeeded"


def test_a_rule_holds_the_undo_until_a_reviewer_approves_it(
    agent: Agent, owner: Any, reviewer: Any, production: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    standby_reviewer(agent)
    policy_object_create(
        actor=SYSTEM,
        obj=Rule(agent=agent, name="charges need a human", effect="hold", action="payments.charge"),
    )
    original = _refunded(production)
    compensation = action_undo(actor=Actor.for_user(owner), action=original)
    assert compensation.status == "pending"
    assert compensations_claim(token=production) == []
    approval_vote(user=reviewer, action_id=compensation.pk, vote="approve")
    assert [c.pk for c in compensations_claim(token=production)] == [compensation.pk]


def test_a_lease_that_ran_out_gives_the_compensation_to_the_next_worker(
    agent: Agent, owner: Any, production: Any
) -> None:
    compensation = action_undo(actor=Actor.for_user(owner), action=_refunded(production))
    assert len(compensations_claim(token=production)) == 1
    Action.objects.filter(pk=compensation.pk).update(
        claimed_until=timezone.now() - dt.timedelta(seconds=1)
    )
    assert [c.pk for c in compensations_claim(token=production)] == [compensation.pk]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reversibility": "irreversible", "undo_contract": None}, "is irreversible"),
        ({"status": "failed"}, "only an action that succeeded"),
        ({"finished_at": timezone.now() - dt.timedelta(hours=2)}, "undo window closed"),
        (
            {
                "undo_contract": {
                    "action": "payments.charge",
                    "params": {"x": "after.nope"},
                    "window_seconds": 3600,
                }
            },
            "could not be worked out",
        ),
    ],
)
def test_an_action_that_cannot_be_undone_says_why_and_nothing_is_decided(
    agent: Agent, owner: Any, production: Any, change: dict[str, Any], message: str
) -> None:
    original = _refunded(production)
    Action.objects.filter(pk=original.pk).update(**change)
    original.refresh_from_db()
    with pytest.raises(ValidationError) as refused:
        action_undo(actor=Actor.for_user(owner), action=original)
    assert message.lower() in " ".join(refused.value.messages).lower()
    assert not Action.objects.filter(compensates=original).exists()


def test_one_undo_at_a_time_and_a_compensation_is_not_undone(
    agent: Agent, owner: Any, production: Any
) -> None:
    original = _refunded(production)
    compensation = action_undo(actor=Actor.for_user(owner), action=original)
    with pytest.raises(ValidationError, match="already allowed"):
        action_undo(actor=Actor.for_user(owner), action=original)
    with pytest.raises(ValidationError, match="compensation is not undone"):
        action_undo(actor=Actor.for_user(owner), action=compensation)


def test_the_page_offers_undo_to_the_owner_only(
    client: Client, agent: Agent, owner: Any, teammate: Any, outsider: Any, production: Any
) -> None:
    original = _refunded(production)
    page = reverse("approvals:action", args=[original.pk])
    undo = reverse("rewind:undo", args=[original.pk])
    client.force_login(teammate)
    assert "Undo this action" not in client.get(page).content.decode()
    assert client.post(undo).status_code == 403
    client.force_login(outsider)
    assert client.post(undo).status_code == 404
    client.force_login(owner)
    assert "Undo this action" in client.get(page).content.decode()
    response = client.post(undo, follow=True)
    assert "The undo was allowed" in response.content.decode()
    assert Action.objects.filter(compensates=original).count() == 1
    assert "already allowed" in client.get(page).content.decode()


def test_the_page_of_an_action_that_never_ran_says_there_is_nothing_to_undo(
    client: Client, agent: Agent, owner: Any, production: Any
) -> None:
    ran = _refunded(production)
    cancelled = decide(production, refund(40, before={"refunded": 0}))
    Action.objects.filter(pk=cancelled.pk).update(status="cancelled")  # it gave up
    client.force_login(owner)
    page = client.get(reverse("approvals:action", args=[cancelled.pk])).content.decode()
    assert "It did not run, so there is nothing to undo" in page
    assert "may be asked for until" not in page and "Undo this action" not in page
    page = client.get(reverse("approvals:action", args=[ran.pk])).content.decode()
    assert "may be asked for until" in page and "Undo this action" in page


def test_a_rule_can_hold_undos_alone_with_the_undo_variable(
    agent: Agent, owner: Any, reviewer: Any, production: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    standby_reviewer(agent)
    policy_object_create(
        actor=SYSTEM,
        obj=Rule(
            agent=agent,
            name="undos over 30 need a human",
            effect="hold",
            action="payments.charge",
            condition="undo && params.amount > 30",
        ),
    )
    charge = decide(
        production, {"action": "payments.charge", "resource": "x", "params": {"amount": 99}}
    )
    assert charge.status == "allowed"  # the agent's own charge: not an undo
    compensation = action_undo(actor=Actor.for_user(owner), action=_refunded(production, 40))
    assert compensation.status == "pending"
    assert [r["name"] for r in compensation.reasons if r["kind"] == "rule"] == [
        "undos over 30 need a human"
    ]


def test_a_paused_agent_is_not_undone_and_says_to_use_the_kill_switch(
    agent: Agent, owner: Any, production: Any
) -> None:
    from oversight.agents.services import agent_update

    original = _refunded(production)
    agent_update(actor=SYSTEM, agent=agent, status="paused")
    with pytest.raises(ValidationError, match="engage its kill switch instead"):
        action_undo(actor=Actor.for_user(owner), action=original)
    assert not Action.objects.filter(compensates=original).exists()


@pytest.mark.parametrize(
    ("record", "code", "words"),
    [
        ({"status": "rolled_back"}, "already_undone", "rolled back"),
        ({"status": "denied"}, "not_run:denied", "this one is denied"),
        ({"reversibility": ""}, "unknown", "reversibility is unknown"),
        ({"reversibility": "irreversible"}, "irreversible", "is irreversible"),
        ({"contract": None}, "no_compensation", "names no way to undo it"),
        ({"done_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}, "window_closed", "window closed"),
        ({}, "", ""),
    ],
)
def test_one_rule_says_why_for_the_plan_and_the_refusal(
    record: dict[str, Any], code: str, words: str
) -> None:
    """The plan says the code, a refused undo the sentence: both from ``undo_blocked``."""
    from oversight.rewind.services import undo_blocked

    now = dt.datetime(2026, 1, 1, 2, tzinfo=dt.UTC)
    fields = {
        "status": "succeeded",
        "reversibility": "reversible",
        "contract": {"action": "payments.charge", "params": {}, "window_seconds": 3600},
        "done_at": now - dt.timedelta(minutes=5),
        "now": now,
        **record,
    }
    got_code, sentence = undo_blocked(**fields)
    assert got_code == code
    assert words in sentence


def test_a_denied_undo_says_why_on_the_page(
    client: Client, agent: Agent, owner: Any, production: Any
) -> None:
    from oversight.policy.models import Grant

    original = _refunded(production)
    from oversight.policy.services import policy_object_delete

    undo_grant = Grant.objects.get(agent=agent, action="payments.charge")
    policy_object_delete(actor=SYSTEM, obj=undo_grant)
    client.force_login(owner)
    response = client.post(reverse("rewind:undo", args=[original.pk]), follow=True)
    [said] = [str(m) for m in response.context["messages"]]
    assert said.startswith("The undo was denied by the agent's policy: "), said
    assert "no matching grant" in said, said


def test_no_undo_is_offered_for_an_action_its_undo_cannot_be_worked_out_for(
    client: Client, agent: Agent, owner: Any, production: Any
) -> None:
    """The grant's undo reads `params.charges[0]`; an action asked with `charge` instead
    (an SDK example against the demo) showed "Undo this action", which then failed."""
    original = _refunded(production)
    Action.objects.filter(pk=original.pk).update(params={"charge": "ch_1", "amount": 5})
    client.force_login(owner)
    page = client.get(reverse("approvals:action", args=[original.pk])).content.decode()
    assert "Undo this action" not in page
    assert "Its undo could not be worked out: undo param &#x27;charge&#x27;" in page
    assert "(params.charges[0])" in page
