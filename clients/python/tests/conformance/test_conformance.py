"""The same scenarios through every integration (one driver each, see drivers/).

Each checks what the caller saw, that the side effect ran exactly once or not at all
(with the params that were approved), and the server's record of the action: the
outcome reported, or why it never ran. (Every driver knows the action it asked about:
its client records it, harness.RecordingOversight.)
"""

from __future__ import annotations

import threading

from lossy_relay import losing_answers, relay_url

from oversight_sdk import Decision

from .harness import (
    BLOCKED_CHARGE,
    DECLINED,
    DECLINED_PREFIX,
    HOLD_ABOVE,
    HOLD_WAIT,
    MCP_REFUND_ACTION,
    REFUND_ACTION,
    Driver,
    Reviewer,
    ReviewerVote,
    Seen,
    World,
    new_charge,
    refund_resource,
)

SMALL, LARGE, EDITED = 10, HOLD_ABOVE + 50, HOLD_ABOVE + 20
DENY_COMMENT = "Not this one: the customer was refunded by hand."


def _call(driver: Driver, world: World, token: str, charge: str, amount: int) -> Seen:
    return driver.call(url=world.url, token=token, arguments={"charge": charge, "amount": amount})


def _record(world: World, action_id: str | None, charge: str, token: str | None = None) -> Decision:
    """The server's record of the call's action (every driver knows the action it asked
    about), read with the token that asked (a token reads its own environment's only)."""
    assert action_id is not None, "the driver did not tell the action it asked about"
    record = world.action(action_id, token=token)
    assert record.action in (REFUND_ACTION, MCP_REFUND_ACTION)
    assert record.resource == refund_resource(charge)
    return record


def _held_call(
    driver: Driver, world: World, reviewer: Reviewer, charge: str, vote: ReviewerVote
) -> tuple[Seen, Decision]:
    """Call with an amount the world holds; the reviewer casts `vote` meanwhile."""
    thread: threading.Thread = reviewer.vote_when_held(refund_resource(charge), vote)
    seen = _call(driver, world, world.token, charge, LARGE)
    thread.join(HOLD_WAIT)
    if vote.error is not None:
        raise vote.error
    assert vote.action_id is not None and seen.action_id == vote.action_id
    return seen, _record(world, vote.action_id, charge)


def _assert_refused(seen: Seen, *words: str) -> None:
    assert seen.executed == []
    assert seen.is_error, seen
    for word in words:
        assert word.lower() in seen.text.lower(), seen.text


def test_an_allowed_call_runs_once_and_its_outcome_is_reported(
    driver: Driver, world: World
) -> None:
    charge = new_charge()
    seen = _call(driver, world, world.token, charge, SMALL)
    assert seen.executed == [{"charge": charge, "amount": SMALL}]
    assert not seen.is_error and charge in seen.text, seen
    record = _record(world, seen.action_id, charge)
    assert (record.status, record.params) == ("succeeded", {"charge": charge, "amount": SMALL})
    assert record.reports_outcome  # said when asking: monitoring alerts if it never comes


def test_a_call_whose_first_answer_was_lost_runs_once_and_its_outcome_is_reported(
    driver: Driver, world: World
) -> None:
    """Oversight allowed the call, and its answer was lost on the way back (a reset
    connection): the client's retry is answered with that decision, which nobody was
    told, so the call runs, once (not "may already have run")."""
    charge = new_charge()
    arguments = {"charge": charge, "amount": SMALL}
    with losing_answers(world.url) as relay:
        seen = driver.call(url=relay_url(relay), token=world.token, arguments=arguments)
    assert relay.lost == 1
    assert seen.executed == [arguments]
    assert not seen.is_error and charge in seen.text, seen
    assert _record(world, seen.action_id, charge).status == "succeeded"


def test_a_call_whose_tool_raises_runs_once_and_is_reported_failed(
    driver: Driver, world: World
) -> None:
    """The tool raised: its caller is told of an error (in the words its framework
    chooses: the OpenAI Agents SDK's default hides the tool's), and the action is
    recorded failed with the tool's words, never succeeded."""
    charge = new_charge(DECLINED_PREFIX)
    seen = _call(driver, world, world.token, charge, SMALL)
    assert seen.executed == [{"charge": charge, "amount": SMALL}]
    assert seen.is_error, seen
    record = _record(world, seen.action_id, charge)
    assert record.status == "failed" and DECLINED in record.error, (record.status, record.error)


def test_a_denied_call_never_runs_and_the_caller_is_told_why(driver: Driver, world: World) -> None:
    seen = _call(driver, world, world.token, BLOCKED_CHARGE, SMALL)
    _assert_refused(seen, "blocked")
    record = _record(world, seen.action_id, BLOCKED_CHARGE)
    assert record.status == "denied"
    assert any("blocked" in r.name for r in record.reasons), record.reasons


def test_a_held_call_runs_once_after_a_reviewer_approves(
    driver: Driver, world: World, reviewer: Reviewer
) -> None:
    charge = new_charge()
    vote = ReviewerVote("approve", comment="Checked with the customer.")
    seen, record = _held_call(driver, world, reviewer, charge, vote)
    assert seen.executed == [{"charge": charge, "amount": LARGE}]
    assert not seen.is_error and charge in seen.text, seen
    assert (record.status, record.edited) == ("succeeded", False)
    # The model is told what the approval said beyond yes: here, her comment.
    assert f"approved this call, saying: {vote.comment}" in seen.text, seen.text


def test_a_held_call_a_reviewer_denies_never_runs_and_shows_her_comment(
    driver: Driver, world: World, reviewer: Reviewer
) -> None:
    vote = ReviewerVote("deny", comment=DENY_COMMENT)
    seen, record = _held_call(driver, world, reviewer, new_charge(), vote)
    _assert_refused(seen, DENY_COMMENT)
    assert (record.status, record.comment) == ("rejected", DENY_COMMENT)


def test_a_call_approved_with_edited_params_runs_once_with_the_edits(
    driver: Driver, world: World, reviewer: Reviewer
) -> None:
    charge = new_charge()
    edits = {"charge": charge, "amount": EDITED}
    vote = ReviewerVote("approve", comment="Part of it was refunded already.", params=edits)
    seen, record = _held_call(driver, world, reviewer, charge, vote)
    assert seen.executed == [edits]
    assert not seen.is_error, seen
    # The model is told its call ran with other arguments, and why, so it does not ask
    # again for the difference.
    said = f"with edited arguments (amount: {LARGE} -> {EDITED}), saying: {vote.comment}"
    assert said in seen.text, seen.text
    assert record.status == "succeeded"
    assert (record.edited, record.params) == (True, edits)
    assert record.requested_params == {"charge": charge, "amount": LARGE}


def test_a_halted_agent_runs_nothing(driver: Driver, world: World) -> None:
    charge = new_charge()
    seen = _call(driver, world, world.halted_token, charge, SMALL)
    _assert_refused(seen, "halted")
    # The halted agent's own record (the world's token is another agent's).
    halted = World(**{**world.__dict__, "token": world.halted_token})
    assert _record(halted, seen.action_id, charge).status == "halted"


def test_a_staging_token_makes_a_dry_run_that_never_runs(driver: Driver, world: World) -> None:
    charge = new_charge()
    seen = _call(driver, world, world.staging_token, charge, SMALL)
    assert seen.executed == []
    assert "dry run" in seen.text.lower().replace("_", " ").replace("-", " "), seen.text
    assert _record(world, seen.action_id, charge, world.staging_token).status == "dry_run"
