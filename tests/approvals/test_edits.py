"""Approve with edits: the approval binds to the edited params, the edited action is
decided again (fail closed), the audit keeps both, and earlier approvals are superseded."""

from __future__ import annotations

import datetime as dt
import html
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from oversight.agents.models import Agent, AgentToken
from oversight.agents.services import agent_access_grant
from oversight.approvals.eligibility import eligible_approvers
from oversight.approvals.models import ApprovalVote
from oversight.approvals.services import approval_vote
from oversight.audit.models import AuditEvent
from oversight.gateway import lifecycle
from oversight.gateway.exceptions import ConflictError
from oversight.gateway.hashing import action_hash
from oversight.gateway.lifecycle import ResultInput, action_report_result
from oversight.gateway.models import Action
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage
from oversight.policy.models import LimitCounter, Rule
from oversight.policy.services import policy_object_create
from tests.conftest import SYSTEM
from tests.gateway.helpers import (
    REFUND,
    decide,
    grant_refunds,
    limit_create,
    refund,
    refund_policy_create,
)

pytestmark = pytest.mark.django_db


def _held(token: AgentToken, amount: int = 900, **hold_fields: Any) -> Action:
    refund_policy_create(token.agent, **hold_fields)
    action = decide(token, refund(amount))
    assert action.status == "pending"
    return action


def _unchanged(action: Action) -> None:
    fresh = Action.objects.get(pk=action.pk)
    assert (fresh.status, fresh.params, fresh.requested_params, fresh.request_hash) == (
        "pending",
        action.params,
        None,
        action.request_hash,
    )
    assert not ApprovalVote.objects.filter(action=action).exists()


def test_an_approval_with_edits_binds_the_action_to_the_edited_params(
    prod_token: AgentToken, rita: Any
) -> None:
    held = _held(prod_token)
    edited = {"amount": 400, "charges": ["ch_1"]}

    approval_vote(
        user=rita, action_id=held.pk, vote="approve", comment="400 is enough", params=edited
    )

    action = Action.objects.get(pk=held.pk)
    assert action.status == "approved"
    assert action.params == edited
    assert action.requested_params == {"amount": 900, "charges": ["ch_1"]}
    assert action.request_hash == action_hash(action.action, action.resource, edited)
    vote = ApprovalVote.objects.get(action=action)
    assert (vote.vote, vote.params, vote.comment) == ("approve", edited, "400 is enough")
    event = AuditEvent.objects.get(verb="action.voted", target_id=str(held.pk))
    assert event.before["params"] == {"amount": 900, "charges": ["ch_1"]}
    assert event.after["params"] == edited
    assert event.after["edited"] is True
    assert event.after["status"] == "approved"
    # The edited params decided again: recorded with the vote and kept on the action. A
    # direct ask for 400 is allowed by the grant; no rule holds it.
    assert action.edit_reasons == event.after["decided_again"]
    assert [(r["kind"], r["effect"]) for r in action.edit_reasons] == [("grant", "allow")]
    assert action.edit_deciding_reasons == []
    assert Action.objects.get(pk=decide(prod_token, refund(800)).pk).edit_reasons is None


def test_the_result_must_be_for_the_edited_params(prod_token: AgentToken, rita: Any) -> None:
    held = _held(prod_token)
    edited = {"amount": 400, "charges": ["ch_1"]}
    approval_vote(user=rita, action_id=held.pk, vote="approve", params=edited)

    asked = ResultInput(outcome="succeeded", params={"amount": 900, "charges": ["ch_1"]})
    with pytest.raises(ConflictError) as refused:
        action_report_result(token=prod_token, action_id=held.pk, data=asked)
    assert refused.value.code == "action_mismatch"

    ran = ResultInput(outcome="succeeded", params=edited)
    assert action_report_result(token=prod_token, action_id=held.pk, data=ran).status == (
        "succeeded"
    )


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"amount": 400}, "keep the keys charges"),
        ({"amount": 400, "charges": ["ch_1"], "note": "x"}, "the keys note were not asked for"),
        ({"amount": "400", "charges": ["ch_1"]}, "params.amount must stay a number"),
        ({"amount": 400, "charges": "ch_1"}, "params.charges must stay a list"),
        ([400], "must be an object"),
    ],
)
def test_an_edit_keeps_the_keys_and_types(
    prod_token: AgentToken, rita: Any, params: Any, says: str
) -> None:
    held = _held(prod_token)
    with pytest.raises(ValidationError) as refused:
        approval_vote(user=rita, action_id=held.pk, vote="approve", params=params)
    assert says in " ".join(refused.value.messages)
    _unchanged(held)


def test_an_edit_the_policy_forbids_is_refused(prod_token: AgentToken, rita: Any) -> None:
    held = _held(prod_token)
    two_charges = {"amount": 400, "charges": ["ch_1", "ch_2"]}  # "one charge at a time"
    with pytest.raises(ValidationError) as refused:
        approval_vote(user=rita, action_id=held.pk, vote="approve", params=two_charges)
    assert "one charge at a time" in " ".join(refused.value.messages)
    _unchanged(held)


def test_no_edit_while_a_kill_switch_is_engaged(prod_token: AgentToken, rita: Any) -> None:
    held = _held(prod_token)
    killswitch_engage(
        actor=SYSTEM, target=parse_target(f"agent:{prod_token.agent.slug}"), reason="x"
    )
    Action.objects.filter(pk=held.pk).update(status="pending")  # engaging cancelled it
    with pytest.raises(ValidationError):
        approval_vote(
            user=rita, action_id=held.pk, vote="approve", params={"amount": 1, "charges": ["ch_1"]}
        )


def test_a_rule_may_forbid_edits(prod_token: AgentToken, rita: Any) -> None:
    held = _held(prod_token, edits_allowed=False)
    assert held.edits_allowed is False
    with pytest.raises(ValidationError) as refused:
        approval_vote(
            user=rita,
            action_id=held.pk,
            vote="approve",
            params={"amount": 400, "charges": ["ch_1"]},
        )
    assert "does not allow edits" in " ".join(refused.value.messages)
    _unchanged(held)
    # Unedited params are a plain approval.
    approval_vote(user=rita, action_id=held.pk, vote="approve", params=dict(held.params))
    assert Action.objects.get(pk=held.pk).status == "approved"


def test_a_param_the_resource_is_made_of_cannot_be_edited(
    client: Any, prod_token: AgentToken, rita: Any
) -> None:
    """The agent said its resource (stripe:charge/ch_1) is made of ``charges``: an edit is
    decided on that resource, so another charge would be refunded on a decision about this
    one. Refused, in the browser too, where the form says so; the amount may still change."""
    refund_policy_create(prod_token.agent)
    held = decide(prod_token, refund(900, resource_params=["charges"]))
    assert (held.status, held.resource_params) == ("pending", ["charges"])
    client.force_login(rita)
    card = html.unescape(client.get("/approvals/").content.decode())
    assert "not charges: the resource is made of it" in card

    with pytest.raises(ValidationError) as refused:
        approval_vote(
            user=rita,
            action_id=held.pk,
            vote="approve",
            params={"amount": 900, "charges": ["ch_2"]},
        )
    assert "made of params.charges, which cannot be edited" in " ".join(refused.value.messages)
    _unchanged(held)
    typed = '{"amount": 900, "charges": ["ch_2"]}'
    body = {"vote": "approve", "params": typed, "request_hash": held.request_hash}
    response = client.post(f"/approvals/{held.pk}/vote/", body, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "made of params.charges" in html.unescape(response.content.decode())
    _unchanged(held)

    approval_vote(
        user=rita, action_id=held.pk, vote="approve", params={"amount": 400, "charges": ["ch_1"]}
    )
    action = Action.objects.get(pk=held.pk)
    assert (action.status, action.params["amount"]) == ("approved", 400)


def test_an_edit_is_charged_against_limits_instead_of_the_asked_params(
    prod_token: AgentToken, rita: Any
) -> None:
    limit = limit_create(max_sum=Decimal(1000), sum_param="amount")
    held = _held(prod_token, amount=600)  # reserves 600
    assert decide(prod_token, refund(300)).status == "allowed"  # 900 used
    counter = LimitCounter.objects.get(limit=limit)

    with pytest.raises(ValidationError) as refused:  # 300 + 800 > 1000
        approval_vote(
            user=rita, action_id=held.pk, vote="approve", params={"amount": 800, "charges": ["x"]}
        )
    assert "limit" in " ".join(refused.value.messages)
    counter.refresh_from_db()
    assert counter.total == Decimal(900)
    _unchanged(held)

    approval_vote(
        user=rita, action_id=held.pk, vote="approve", params={"amount": 650, "charges": ["x"]}
    )
    counter.refresh_from_db()
    assert counter.total == Decimal(950)  # 600 given back, 650 charged
    assert Action.objects.get(pk=held.pk).limit_usage[0]["amount"] == "650"


def test_an_edit_of_an_action_held_over_a_full_hold_limit_is_approved_above_it(
    prod_token: AgentToken, rita: Any
) -> None:
    """The hold limit that held the action is full whatever its params: the approval is a
    person's yes above it, edited or not (decision 0030). It is not charged; the other
    limits are charged for the edited params instead of the asked ones."""
    grant_refunds(prod_token.agent)
    ask = limit_create(name="ask above 1", max_count=1, on_exceed="hold")
    cap = limit_create(name="never more than 3", max_count=3, on_exceed="deny")
    money = limit_create(name="at most 250", max_sum=Decimal(250), sum_param="amount")
    assert decide(prod_token, refund(100)).status == "allowed"
    held = decide(prod_token, refund(100))  # held by "ask above 1", charged on the others

    def counts() -> list[tuple[int, Decimal]]:
        return [
            (counter.count, counter.total)
            for counter in (LimitCounter.objects.get(limit=lim) for lim in (ask, cap, money))
        ]

    assert counts() == [(1, Decimal(0)), (2, Decimal(0)), (2, Decimal(200))]
    edit = {"amount": 50, "charges": ["ch_1"]}
    action = approval_vote(user=rita, action_id=held.pk, vote="approve", params=edit)
    assert (action.status, action.params) == ("approved", edit)
    assert counts() == [(1, Decimal(0)), (2, Decimal(0)), (2, Decimal(150))]
    assert {u["limit_id"] for u in action.limit_usage} == {cap.pk, money.pk}
    assert [r["name"] for r in action.edit_deciding_reasons] == ["ask above 1"]


def test_an_action_held_by_two_full_hold_limits_names_both_and_an_edit_is_above_both(
    prod_token: AgentToken, rita: Any
) -> None:
    """Both limits that held it are in its reasons (the strictest's alone was, and the
    other, charged for the edit and full, refused every edit)."""
    grant_refunds(prod_token.agent)
    count = limit_create(name="ask above 1", max_count=1, on_exceed="hold")
    money = limit_create(
        name="ask above 150 in all", max_sum=Decimal(150), sum_param="amount", on_exceed="hold"
    )
    assert decide(prod_token, refund(100)).status == "allowed"
    held = decide(prod_token, refund(100))  # over both
    assert [(r["name"], r["effect"]) for r in held.reasons if r["kind"] == "limit"] == [
        ("ask above 1", "hold"),
        ("ask above 150 in all", "hold"),
    ]

    edit = {"amount": 20, "charges": ["ch_1"]}  # 120: within the sum, still over the count
    action = approval_vote(user=rita, action_id=held.pk, vote="approve", params=edit)
    assert (action.status, action.params) == ("approved", edit)
    assert action.limit_usage == []  # charged on neither: the approval is above both
    counters = [LimitCounter.objects.get(limit=lim) for lim in (count, money)]
    assert [(c.count, c.total) for c in counters] == [(1, Decimal(0)), (1, Decimal(100))]
    assert [r["name"] for r in action.edit_deciding_reasons] == [
        "ask above 1",
        "ask above 150 in all",
    ]


def test_an_edit_over_another_hold_limit_than_the_one_that_held_it_is_refused(
    prod_token: AgentToken, rita: Any
) -> None:
    grant_refunds(prod_token.agent)
    limit_create(name="ask above 1", max_count=1, on_exceed="hold")
    limit_create(
        name="ask above 250 in all", max_sum=Decimal(250), sum_param="amount", on_exceed="hold"
    )
    assert decide(prod_token, refund(100)).status == "allowed"
    held = decide(prod_token, refund(100))  # held by the count, within the sum (200)

    with pytest.raises(ValidationError) as refused:  # 100 + 300 goes over the sum too
        edit = {"amount": 300, "charges": ["ch_1"]}
        approval_vote(user=rita, action_id=held.pk, vote="approve", params=edit)
    assert "ask above 250 in all" in " ".join(refused.value.messages)
    _unchanged(held)


def test_an_edit_supersedes_earlier_approvals(prod_token: AgentToken, rita: Any, rob: Any) -> None:
    held = _held(prod_token, approvals=2)
    approval_vote(user=rob, action_id=held.pk, vote="approve")
    edited = {"amount": 700, "charges": ["ch_1"]}

    action = approval_vote(user=rita, action_id=held.pk, vote="approve", params=edited)

    assert action.status == "pending"  # rob approved 900, not 700
    assert ApprovalVote.objects.get(action=held, voter=rob).superseded is True
    action = approval_vote(user=rob, action_id=held.pk, vote="approve")  # rob approves 700
    assert (action.status, action.params) == ("approved", edited)
    with pytest.raises(ConflictError):
        approval_vote(user=rob, action_id=held.pk, vote="approve")


def test_only_an_approval_may_edit(prod_token: AgentToken, rita: Any) -> None:
    held = _held(prod_token)
    with pytest.raises(ValidationError):
        approval_vote(user=rita, action_id=held.pk, vote="deny", comment="no", params={"amount": 1})
    _unchanged(held)


def test_the_owner_may_not_edit_under_separation_of_duties(
    prod_token: AgentToken, owner: Any
) -> None:
    held = _held(prod_token, separation_of_duties=True)
    with pytest.raises(PermissionDenied):
        approval_vote(
            user=owner,
            action_id=held.pk,
            vote="approve",
            params={"amount": 400, "charges": ["ch_1"]},
        )
    _unchanged(held)


def test_the_queue_shows_an_edited_action_as_asked_and_as_edited(
    client: Any, prod_token: AgentToken, rita: Any, rob: Any
) -> None:
    held = _held(prod_token, approvals=2)
    approval_vote(
        user=rita, action_id=held.pk, vote="approve", params={"amount": 700, "charges": ["ch_1"]}
    )

    client.force_login(rob)  # the second approver decides from the queue
    page = html.unescape(client.get("/approvals/").content.decode())

    asked, edited = page.split("Params as asked", 1)[1].split("Params as edited by a reviewer")
    assert '"amount": 900' in asked and '"amount": 700' in edited.split("</pre>", 2)[1]
    # 700 is held by the same rule as 900: the card says so, without listing it twice.
    assert "The same rules hold the edited params." in page
    assert "And for the edited params" not in page


def test_a_card_says_when_the_edited_params_alone_would_be_allowed(
    client: Any, prod_token: AgentToken, rita: Any, rob: Any
) -> None:
    held = _held(prod_token, approvals=2)
    approval_vote(
        user=rita, action_id=held.pk, vote="approve", params={"amount": 300, "charges": ["ch_1"]}
    )
    client.force_login(rob)
    page = html.unescape(client.get("/approvals/").content.decode())
    assert "Asked for directly, the edited params would be allowed" in page
    assert "And for the edited params" not in page
    action_page = html.unescape(client.get(f"/actions/{held.pk}/").content.decode())
    assert "Reasons for the edited params" in action_page


# --- an edit that a cancellation or an expiry did not see ----------------------------------


def _edited_after_it_was_read(token: AgentToken, rita: Any, approvals: int) -> tuple[Action, Any]:
    """A held refund of 900 against a sum limit, read as a cancellation or an expiry reads
    it (no lock), then edited to 600 by a reviewer before that cancellation or expiry
    claims it: (the action as read, the limit's counter)."""
    limit = limit_create(max_sum=Decimal(1000), sum_param="amount")
    read = Action.objects.get(pk=_held(token, approvals=approvals).pk)
    edit = {"amount": 600, "charges": ["ch_1"]}
    approval_vote(user=rita, action_id=read.pk, vote="approve", params=edit)
    counter = LimitCounter.objects.get(limit=limit)
    assert (counter.count, counter.total) == (1, Decimal(600))
    return read, counter


def test_an_expiry_gives_back_the_charge_the_action_holds_not_the_one_it_read(
    prod_token: AgentToken, rita: Any
) -> None:
    read, counter = _edited_after_it_was_read(prod_token, rita, approvals=2)  # still pending
    read.expires_at = timezone.now() - dt.timedelta(seconds=1)
    Action.objects.filter(pk=read.pk).update(expires_at=read.expires_at)

    assert lifecycle.action_expire_if_due(action=read).status == "expired"

    counter.refresh_from_db()
    assert (counter.count, counter.total) == (0, Decimal(0))


# --- an edit under a stricter rule ---------------------------------------------------

HUGE = {"amount": 9000, "charges": ["ch_1"]}


def _hold_huge_refunds(agent: Agent, people: list[Any], **fields: Any) -> Rule:
    """Refunds over 5000 are held for ``people`` only, to be decided within two minutes."""
    rule = Rule(
        agent=agent,
        name="huge refunds",
        effect="hold",
        action=REFUND,
        condition="params.amount > 5000",
        approvers="people",
        expires_in_seconds=120,
        **fields,
    )
    return policy_object_create(actor=SYSTEM, obj=rule, approver_people=people)


def test_an_edit_into_a_stricter_rule_is_refused_to_an_editor_it_does_not_admit(
    prod_token: AgentToken, rita: Any, rob: Any
) -> None:
    held = _held(prod_token)  # 900: anyone with approve access
    _hold_huge_refunds(prod_token.agent, [rob])
    asked_directly = decide(prod_token, refund(9000, charges=("ch_2",)))
    with pytest.raises(PermissionDenied, match="This action is for rob to decide"):
        approval_vote(user=rita, action_id=asked_directly.pk, vote="approve")

    with pytest.raises(ValidationError) as refused:  # nor as an edit of a 900 refund
        approval_vote(user=rita, action_id=held.pk, vote="approve", params=HUGE)
    assert refused.value.message_dict == {
        "params": [
            "You may not approve the action as edited: This action is for rob to decide; you "
            "are not one of them."
        ]
    }
    _unchanged(held)
    fresh = Action.objects.get(pk=held.pk)
    assert (fresh.approver_sets, fresh.expires_at) == (held.approver_sets, held.expires_at)
    assert not AuditEvent.objects.filter(verb="action.voted").exists()


def test_in_the_browser_such_an_edit_is_refused_in_place_keeping_what_was_typed(
    client: Any, prod_token: AgentToken, rita: Any, rob: Any
) -> None:
    held = _held(prod_token)
    _hold_huge_refunds(prod_token.agent, [rob])
    client.force_login(rita)
    typed = '{"amount": 9000, "charges": ["ch_1"]}'
    body = {"vote": "approve", "params": typed, "request_hash": held.request_hash}
    response = client.post(f"/approvals/{held.pk}/vote/", body, HTTP_HX_REQUEST="true")

    assert response.status_code == 422
    card = html.unescape(response.content.decode())
    assert "You may not approve the action as edited: This action is for rob to decide" in card
    assert '<details class="edit-approve" open>' in card and typed in card
    _unchanged(held)


def test_an_edit_binds_the_action_to_the_approvers_and_deadline_of_the_stricter_rule(
    prod_token: AgentToken, rita: Any, rob: Any, admin_user: Any
) -> None:
    agent = prod_token.agent
    agent_access_grant(actor=SYSTEM, agent=agent, user=admin_user, level="reviewer")
    held = _held(prod_token)  # 900: one approval from anyone with approve access
    _hold_huge_refunds(agent, [rob, admin_user], approvals=2, separation_of_duties=True)

    before = timezone.now()
    action = approval_vote(user=rob, action_id=held.pk, vote="approve", params=HUGE)

    assert (action.status, action.approvals_required, action.separation_of_duties) == (
        "pending",
        2,
        True,
    )
    assert [s["rule"] for s in action.approver_sets] == ["large refunds", "huge refunds"]
    assert action.expires_at <= before + dt.timedelta(seconds=121) < held.expires_at
    event = AuditEvent.objects.get(verb="action.voted", target_id=str(held.pk))
    assert event.before["approver_sets"] == held.approver_sets
    assert event.after["approver_sets"] == action.approver_sets
    assert (event.before["approvals_required"], event.after["approvals_required"]) == (1, 2)
    # What holds the edited params (the huge refunds rule and the large one) is kept,
    # and what the edit added is told apart: the huge refunds rule.
    assert {r["name"] for r in action.edit_deciding_reasons} == {"huge refunds", "large refunds"}
    assert [r["name"] for r in action.edit_added_reasons] == ["huge refunds"]
    # The one who may approve it now is the other person that rule names, not rita.
    assert [u.username for u in eligible_approvers(action)] == ["ada"]
    with pytest.raises(
        PermissionDenied, match="This action is for ada, rob, not the owner to decide"
    ):
        approval_vote(user=rita, action_id=held.pk, vote="approve")
    assert approval_vote(user=admin_user, action_id=held.pk, vote="approve").status == "approved"


def test_an_edited_actions_page_says_who_may_approve_it_now(
    client: Any, prod_token: AgentToken, rita: Any, rob: Any, admin_user: Any
) -> None:
    agent_access_grant(actor=SYSTEM, agent=prod_token.agent, user=admin_user, level="reviewer")
    held = _held(prod_token)
    _hold_huge_refunds(prod_token.agent, [rob, admin_user], approvals=2)
    approval_vote(user=rob, action_id=held.pk, vote="approve", params=HUGE)

    client.force_login(rita)
    page = html.unescape(client.get(f"/actions/{held.pk}/").content.decode())
    assert "<strong>Who may approve:</strong> ada, rob: ada" in page
    assert 'name="vote"' not in page  # not hers to decide any more
    client.force_login(admin_user)
    page = html.unescape(client.get("/approvals/").content.decode())
    assert "Votes 1 of 2" in page and '"amount": 9000' in page and 'name="vote"' in page
    added = page.split("And for the edited params", 1)[1].split("</ul>", 1)[0]
    assert "huge refunds" in added and "large refunds" not in added


def test_an_edit_out_from_under_a_stricter_rule_keeps_its_approvers(
    prod_token: AgentToken, rita: Any, rob: Any
) -> None:
    _hold_huge_refunds(prod_token.agent, [rob], approvals=1)
    held = _held(prod_token, amount=9000)  # both rules: only rob
    assert [s["rule"] for s in held.approver_sets] == ["huge refunds", "large refunds"]

    asked = {"amount": 900, "charges": ["ch_1"]}
    with pytest.raises(PermissionDenied):  # 900 would not need rob; the edit still does
        approval_vote(user=rita, action_id=held.pk, vote="approve", params=asked)
    action = approval_vote(user=rob, action_id=held.pk, vote="approve", params=asked)
    assert (action.status, action.params) == ("approved", asked)
    assert action.approver_sets == held.approver_sets


# --- an approval binds to the params its voter saw -------------------------------------

AMENDED = {"amount": 4900, "charges": ["ch_1"]}


def test_an_approval_of_params_edited_since_the_voter_loaded_them_is_refused(
    prod_token: AgentToken, rita: Any, rob: Any
) -> None:
    held = _held(prod_token, approvals=2)
    seen_by_rita = held.request_hash  # her card says 900
    edited = approval_vote(
        user=rob, action_id=held.pk, vote="approve", params=AMENDED, seen=held.request_hash
    )
    assert edited.status == "pending"  # rob's is one of two approvals of 4900

    with pytest.raises(ConflictError) as refused:  # rita clicks Approve on the 900 card
        approval_vote(user=rita, action_id=held.pk, vote="approve", seen=seen_by_rita)
    assert refused.value.code == "action_changed"
    assert "edited since you loaded it" in str(refused.value)
    assert Action.objects.get(pk=held.pk).status == "pending"
    assert not ApprovalVote.objects.filter(voter=rita).exists()

    # She looks again, and approves what she now sees.
    action = approval_vote(user=rita, action_id=held.pk, vote="approve", seen=edited.request_hash)
    assert (action.status, action.params) == ("approved", AMENDED)


def test_an_edit_of_params_edited_since_the_editor_loaded_them_is_refused(
    prod_token: AgentToken, rita: Any, rob: Any
) -> None:
    held = _held(prod_token, approvals=2)
    approval_vote(
        user=rob, action_id=held.pk, vote="approve", params=AMENDED, seen=held.request_hash
    )

    smaller = {"amount": 400, "charges": ["ch_1"]}
    with pytest.raises(ConflictError, match="edited since you loaded it"):
        approval_vote(
            user=rita, action_id=held.pk, vote="approve", params=smaller, seen=held.request_hash
        )
    action = Action.objects.get(pk=held.pk)
    assert (action.status, action.params) == ("pending", AMENDED)
    assert not ApprovalVote.objects.filter(voter=rita).exists()


def test_a_deny_stands_whatever_params_the_voter_saw(
    prod_token: AgentToken, rita: Any, rob: Any
) -> None:
    held = _held(prod_token, approvals=2)
    approval_vote(
        user=rob, action_id=held.pk, vote="approve", params=AMENDED, seen=held.request_hash
    )

    action = approval_vote(
        user=rita, action_id=held.pk, vote="deny", comment="no refund", seen=held.request_hash
    )
    assert action.status == "rejected"


def test_an_edit_to_an_amount_a_limit_cannot_count_says_the_value_is_invalid(
    prod_token: AgentToken, rita: Any
) -> None:
    limit_create(max_sum=Decimal(100000), sum_param="amount")
    held = _held(prod_token)
    with pytest.raises(ValidationError) as refused:
        approval_vote(
            user=rita, action_id=held.pk, vote="approve", params={"amount": -5, "charges": ["x"]}
        )
    said = " ".join(refused.value.messages)
    assert "params.amount must be a number, zero or more" in said
    assert "over a limit" not in said
    _unchanged(held)
