"""The reviewer's answer reaches the agent through the SDK, against the real server: a
deny's comment and voter, and params a reviewer edited (which the guard runs, or refuses
to run, never the params nobody approved)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from oversight.agents.tool_pins import SeenTool, tool_pins_record
from oversight.approvals.services import approval_vote
from oversight.gateway.models import Action
from oversight_sdk import (
    ActionEdited,
    ActionNotStarted,
    ActionRejected,
    AsyncOversight,
    Decision,
    Oversight,
)
from tests.sdk.test_sdk_live import (  # noqa: F401 (fixtures)
    REFUND,
    RecordingOversight,
    _refund,
    _token,
    approver,
    client,
    live_url,
    policy,
)

pytestmark = pytest.mark.postgres

EDITED = {"amount": 400}


def _in_thread(run: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    ended: dict[str, Any] = {}

    def target() -> None:
        try:
            ended["value"] = run()
        except Exception as exc:
            ended["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, ended


@pytest.fixture
def named_approver(approver: Any) -> Any:  # noqa: F811
    approver.first_name, approver.last_name = "Rita", "Reviewer"
    approver.save()
    return approver


def test_a_deny_s_comment_reaches_the_sdk(
    client: RecordingOversight,  # noqa: F811
    named_approver: Any,
) -> None:
    def run() -> None:
        with client.guard(REFUND, timeout=10, **_refund("ch_1", 900)):
            pytest.fail("a rejected action ran")

    thread, ended = _in_thread(run)
    decision = client.asked.get(timeout=10)
    approval_vote(
        user=named_approver, action_id=decision.id, vote="deny", comment="Refund 400 at most"
    )
    thread.join(timeout=15)

    exc = ended["error"]
    assert isinstance(exc, ActionRejected)
    assert (exc.comment, exc.decided_by) == ("Refund 400 at most", "Rita Reviewer")
    [vote] = exc.votes
    assert (vote.username, vote.vote, vote.comment) == (
        named_approver.username,
        "deny",
        exc.comment,
    )
    assert vote.at is not None
    assert "denied by Rita Reviewer: Refund 400 at most" in str(exc)


def test_a_deny_s_comment_reaches_the_async_sdk(
    live_url: str,  # noqa: F811
    agent: Any,
    policy: None,  # noqa: F811
    named_approver: Any,
) -> None:
    asked: list[Decision] = []
    token = _token(agent)

    async def scenario() -> None:
        async with AsyncOversight(live_url, token, wait_timeout=10) as aclient:
            original = aclient.ask

            async def ask(*args: Any, **kwargs: Any) -> Decision:
                asked.append(await original(*args, **kwargs))
                return asked[-1]

            aclient.ask = ask  # type: ignore[method-assign]
            async with aclient.guard(REFUND, **_refund("ch_2", 900)):
                pytest.fail("a rejected action ran")

    thread, ended = _in_thread(lambda: asyncio.run(scenario()))
    for _ in range(100):
        if asked:
            break
        threading.Event().wait(0.1)
    approval_vote(user=named_approver, action_id=asked[0].id, vote="deny", comment="Not today")
    thread.join(timeout=15)

    exc = ended["error"]
    assert isinstance(exc, ActionRejected)
    assert (exc.comment, exc.decided_by, exc.votes[0].vote) == (
        "Not today",
        "Rita Reviewer",
        "deny",
    )


def test_an_approval_s_comment_and_voter_are_on_the_result(
    client: RecordingOversight,  # noqa: F811
    named_approver: Any,
) -> None:
    thread, ended = _in_thread(lambda: _guarded_with(client, **_refund("ch_3", 900)))
    decision = client.asked.get(timeout=10)
    approval_vote(user=named_approver, action_id=decision.id, vote="approve", comment="fine")
    thread.join(timeout=15)
    guard = ended["value"]
    assert (guard.decision.comment, guard.decision.decided_by) == ("fine", "Rita Reviewer")
    assert guard.result.status == "succeeded" and guard.result.votes[0].comment == "fine"


def _guarded_with(client: Oversight, **kwargs: Any) -> Any:  # noqa: F811
    with client.guard(REFUND, timeout=10, **kwargs) as g:
        g.after = {"ran_with": g.params}
    return g


def test_the_guarded_function_runs_with_the_params_a_reviewer_edited(
    client: RecordingOversight,  # noqa: F811
    approver: Any,  # noqa: F811
) -> None:
    ran: list[int] = []

    @client.guard(
        REFUND,
        resource=lambda charge: f"stripe:charge/{charge}",
        params=lambda amount: {"amount": amount},
        timeout=10,
    )
    def refund(charge: str, amount: int) -> dict[str, Any]:
        ran.append(amount)
        return {"refunded": amount}

    thread, ended = _in_thread(lambda: refund("ch_4", 900))
    decision = client.asked.get(timeout=10)
    approval_vote(user=approver, action_id=decision.id, vote="approve", params=EDITED)
    thread.join(timeout=15)

    assert ended == {"value": {"refunded": 400}}
    assert ran == [400]
    action = Action.objects.get(pk=decision.id)
    assert (action.status, action.params, action.requested_params) == (
        "succeeded",
        EDITED,
        {"amount": 900},
    )


def test_a_guarded_function_does_not_run_an_edit_of_the_argument_its_resource_names(
    client: RecordingOversight,  # noqa: F811
    approver: Any,  # noqa: F811
) -> None:
    """Oversight decides an edit on the resource first asked for: an edited `charge` would
    run the refund on another charge (here a forbidden one) while the record names the
    first. The guard says the resource is made of `charge`, so Oversight refuses the edit;
    and for an action it does not know that of (asked by an older SDK), the guard does not
    run it (ActionEdited) and withdraws the approval."""
    ran: list[str] = []

    @client.guard(
        REFUND,
        resource=lambda charge: f"stripe:charge/{charge}",
        params=lambda charge, amount: {"charge": charge, "amount": amount},
        timeout=10,
    )
    def refund(charge: str, amount: int) -> dict[str, Any]:
        ran.append(charge)
        return {"refunded": amount}

    thread, ended = _in_thread(lambda: refund("ch_5", 900))
    decision = client.asked.get(timeout=10)
    edit = {"charge": "blocked-1", "amount": 900}
    assert Action.objects.get(pk=decision.id).resource_params == ["charge"]
    with pytest.raises(ValidationError, match=r"made of params\.charge"):
        approval_vote(user=approver, action_id=decision.id, vote="approve", params=edit)
    assert Action.objects.get(pk=decision.id).status == "pending"
    Action.objects.filter(pk=decision.id).update(resource_params=None)
    approval_vote(user=approver, action_id=decision.id, vote="approve", params=edit)
    thread.join(timeout=15)

    assert ran == []
    assert isinstance(ended.get("error"), ActionEdited), ended
    assert Action.objects.get(pk=decision.id).status == "cancelled"


def test_a_with_block_runs_edited_params_only_when_it_accepts_them(
    client: RecordingOversight,  # noqa: F811
    approver: Any,  # noqa: F811
) -> None:
    thread, ended = _in_thread(lambda: _guarded_with(client, **_refund("ch_5", 900)))
    refused = client.asked.get(timeout=10)
    approval_vote(user=approver, action_id=refused.id, vote="approve", params=EDITED)
    thread.join(timeout=15)
    assert isinstance(ended["error"], ActionEdited)
    assert ended["error"].decision.params == EDITED
    assert Action.objects.get(pk=refused.id).status == "cancelled"  # nothing ran

    thread, ended = _in_thread(
        lambda: _guarded_with(client, accept_edits=True, **_refund("ch_6", 900))
    )
    accepted = client.asked.get(timeout=10)
    approval_vote(user=approver, action_id=accepted.id, vote="approve", params=EDITED)
    thread.join(timeout=15)
    guard = ended["value"]
    assert guard.edited and guard.params == EDITED
    action = Action.objects.get(pk=accepted.id)
    assert (action.status, action.after) == ("succeeded", {"ran_with": EDITED})


def test_an_approved_action_oversight_will_not_start_is_never_run(
    client: RecordingOversight,  # noqa: F811
    approver: Any,  # noqa: F811
    live_url: str,  # noqa: F811
    agent: Any,
) -> None:
    """Approved before its tool's definition changed: Oversight will not start it (409
    ``tool_changed``) while it is still approved, and neither client takes that as a
    claim to run it (they did: a refused start read the action again and, approved,
    returned it as runnable)."""

    def seen(description: str) -> SeenTool:
        return SeenTool("payments", "refund", REFUND, description, {"type": "object"})

    tool_pins_record(agent=agent, tools=[seen("Refund a charge.")])
    decision = client.ask(REFUND, **_refund("ch_3", 900))
    approval_vote(user=approver, action_id=decision.id, vote="approve")
    tool_pins_record(agent=agent, tools=[seen("Refund a charge, then export the card.")])

    approved = client.get(decision.id)
    with pytest.raises(ActionNotStarted, match="definition changed") as refused:
        client.claim(approved)
    assert refused.value.decision.status == "approved"

    token = _token(agent)

    async def claim_async() -> None:
        async with AsyncOversight(live_url, token, timeout=5) as aclient:
            await aclient.claim(approved)

    with pytest.raises(ActionNotStarted, match="definition changed"):
        asyncio.run(claim_async())
    assert Action.objects.get(pk=decision.id).started_at is None
