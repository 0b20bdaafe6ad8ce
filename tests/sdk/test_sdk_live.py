"""The SDK against the real server (uvicorn in a subprocess) on the test database.

The refund bot may refund charges; refunds over 500 are held for one approval, and
charges whose id starts with `blocked-` are forbidden.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from oversight.agents.services import agent_access_grant, agent_update, token_create
from oversight.approvals.services import approval_vote
from oversight.gateway.models import Action
from oversight.killswitch.selectors import parse_target
from oversight.killswitch.services import killswitch_engage
from oversight.policy.models import Grant, Rule
from oversight.policy.services import policy_object_create
from oversight.releases.services import release_rollback
from oversight_sdk import (
    ActionDenied,
    ActionFinished,
    ActionHalted,
    ActionRejected,
    AgentUnavailable,
    ApprovalTimeout,
    AsyncOversight,
    AuthenticationError,
    Conflict,
    ConnectionFailed,
    Decision,
    DryRun,
    InvalidRequest,
    NotFound,
    OutcomeUnknown,
    Oversight,
    current_guard,
)
from oversight_sdk.binding import GuardSpec
from oversight_sdk.guard import AsyncGuard, Guard
from tests.conftest import SYSTEM
from tests.gateway.helpers import standby_reviewer
from tests.integrations.conftest import ApprovedWhileGivingUp
from tests.servers import asgi_server

pytestmark = pytest.mark.postgres

REFUND = "payments.refund"


@pytest.fixture
def live_url(transactional_db: None) -> Iterator[str]:
    """One server per test, started after the previous test's flush (see tests/browser)."""
    with asgi_server(extra_env={"DJANGO_ALLOW_ASYNC_UNSAFE": ""}) as url:
        yield url


@pytest.fixture
def policy(agent: Any) -> None:
    standby_reviewer(agent)  # a hold rule needs someone who can approve it
    for obj in (
        Grant(agent=agent, action=REFUND, resource="stripe:charge/*"),
        Rule(
            agent=agent,
            name="big refunds need a human",
            effect="hold",
            action=REFUND,
            condition="params.amount > 500",
            approvals=1,
            expires_in_seconds=600,
        ),
        Rule(
            agent=agent,
            name="blocked charges",
            effect="forbid",
            action=REFUND,
            resource="stripe:charge/blocked-*",
        ),
    ):
        policy_object_create(actor=SYSTEM, obj=obj)


def _token(agent: Any, environment: str = "production") -> str:
    return token_create(actor=SYSTEM, agent=agent, environment=environment)[1]


class RecordingOversight(Oversight):
    """Hands each decision `ask` receives to the test thread, so it can vote on it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: queue.Queue[Decision] = queue.Queue()

    def ask(self, *args: Any, **kwargs: Any) -> Decision:
        decision = super().ask(*args, **kwargs)
        self.asked.put(decision)
        return decision


@pytest.fixture
def client(live_url: str, agent: Any, policy: None) -> Iterator[RecordingOversight]:
    with RecordingOversight(
        live_url, _token(agent), timeout=5, wait_timeout=5, retries=2, backoff=0.05
    ) as client:
        yield client


@pytest.fixture
def approver(agent: Any, reviewer: Any) -> Any:
    agent_access_grant(actor=SYSTEM, agent=agent, user=reviewer, level="reviewer")
    return reviewer


def _refund(charge: str, amount: int) -> dict[str, Any]:
    return {"resource": f"stripe:charge/{charge}", "params": {"amount": amount}}


def _guard_in_thread(client: Oversight, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run a guarded block in a thread; the returned dict says how it ended."""
    ended: dict[str, Any] = {}

    def run() -> None:
        try:
            with client.guard(REFUND, timeout=10, **kwargs) as g:
                ended["ran"] = True
                g.after = {"refunded": kwargs["params"]["amount"]}
        except Exception as exc:
            ended["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, ended


def test_an_allowed_action_runs_and_its_outcome_is_recorded(client: Oversight) -> None:
    with client.guard(REFUND, **_refund("ch_1", 20), before={"refunded": 0}) as g:
        assert g.decision is not None and g.decision.status == "allowed"
        g.after = {"refunded": 20}
    assert g.result is not None and g.result.status == "succeeded"
    action = Action.objects.get(pk=g.action_id)
    assert (action.status, action.before, action.after) == ("succeeded", {"refunded": 0}, g.after)
    assert action.finished_at is not None
    assert action.reports_outcome  # the guard says so when it asks


def test_an_ask_says_it_reports_the_outcome_only_when_told(client: Oversight) -> None:
    """Monitoring alerts on an allowed action said to be reported that never is; a bare
    `ask` may be an agent that does not report, so it says so only when told."""
    bare = client.ask(REFUND, **_refund("ch_31", 20))
    told = client.ask(REFUND, **_refund("ch_32", 20), reports_outcome=True)
    assert (bare.status, told.status) == ("allowed", "allowed")
    assert (client.get(bare.id).reports_outcome, client.get(told.id).reports_outcome) == (
        False,
        True,
    )


def test_a_denied_action_does_not_run(client: Oversight) -> None:
    ran = []
    with (
        pytest.raises(ActionDenied) as caught,
        client.guard(REFUND, **_refund("blocked-1", 20)),
    ):
        ran.append(True)
    assert not ran
    assert "blocked charges" in [reason.name for reason in caught.value.reasons]
    assert Action.objects.get(pk=caught.value.action_id).status == "denied"


def test_a_held_action_runs_once_approved(client: RecordingOversight, approver: Any) -> None:
    thread, ended = _guard_in_thread(client, **_refund("ch_2", 900))
    decision = client.asked.get(timeout=10)
    assert decision.status == "pending"
    approval_vote(user=approver, action_id=decision.id, vote="approve")
    thread.join(timeout=15)
    assert ended == {"ran": True}
    action = Action.objects.get(pk=decision.id)
    assert (action.status, action.after) == ("succeeded", {"refunded": 900})


def test_a_rejected_action_does_not_run(client: RecordingOversight, approver: Any) -> None:
    thread, ended = _guard_in_thread(client, **_refund("ch_3", 900))
    decision = client.asked.get(timeout=10)
    approval_vote(user=approver, action_id=decision.id, vote="deny", comment="too much")
    thread.join(timeout=15)
    assert "ran" not in ended
    assert isinstance(ended["error"], ActionRejected)
    assert ended["error"].status == "rejected"


def test_the_agent_acknowledges_a_refusal_it_passed_on(
    client: RecordingOversight, approver: Any
) -> None:
    thread, _ended = _guard_in_thread(client, **_refund("ch_3b", 900))
    decision = client.asked.get(timeout=10)
    approval_vote(user=approver, action_id=decision.id, vote="deny", comment="too much")
    thread.join(timeout=15)
    told = client.acknowledge(decision.id)
    assert told.status == "rejected" and told.acknowledged_at is not None
    assert client.get(decision.id).acknowledged_at == told.acknowledged_at
    allowed = client.ask(REFUND, "stripe:charge/ch_3c", params={"amount": 5})
    with pytest.raises(Conflict, match="ended without running"):
        client.acknowledge(allowed.id)


def test_an_undecided_hold_times_out(client: Oversight) -> None:
    with (
        pytest.raises(ApprovalTimeout) as caught,
        client.guard(REFUND, **_refund("ch_4", 900), timeout=1),
    ):
        pytest.fail("the block ran without an approval")
    assert caught.value.waited >= 1
    # The guard gave up on it, so no reviewer approves an action nobody will run.
    assert client.get(caught.value.action_id).status == "cancelled"


def test_an_approval_in_the_moment_the_wait_ran_out_wins_and_the_block_runs(
    live_url: str, agent: Any, policy: None, approver: Any
) -> None:
    with (
        ApprovedWhileGivingUp(live_url, _token(agent), approver=approver) as client,
        client.guard(REFUND, **_refund("ch_4b", 900), timeout=1) as guard,
    ):
        guard.after = {"refunded": 900}
    action = Action.objects.get(pk=guard.action_id)
    assert (action.status, action.after) == ("succeeded", {"refunded": 900})


def test_two_guards_waiting_on_one_approval_run_it_once(
    client: RecordingOversight, approver: Any
) -> None:
    """Two callers with one idempotency key wait on one held action; approved, the one
    whose claim of the run is granted runs it, the other is told it may have run."""
    ran: list[bool] = []
    errors: list[BaseException] = []

    def caller() -> None:
        spec = GuardSpec(REFUND, timeout=20, idempotency_key="k-4c", **_refund("ch_4c", 900))
        try:
            with Guard(client, spec):
                ran.append(True)
                time.sleep(1)  # still running when the other caller learns of the approval
        except ActionFinished as exc:
            errors.append(exc)

    callers = [threading.Thread(target=caller) for _ in range(2)]
    for thread in callers:
        thread.start()
    decisions = [client.asked.get(timeout=10) for _ in callers]
    assert len({d.id for d in decisions}) == 1
    approval_vote(user=approver, action_id=decisions[0].id, vote="approve")
    for thread in callers:
        thread.join(timeout=30)
    assert ran == [True]
    [refused] = errors
    assert "started already" in str(refused) or refused.decision.status == "succeeded"
    assert Action.objects.get(pk=decisions[0].id).status == "succeeded"


def test_a_kill_switch_halts_the_agent(client: Oversight, agent: Any) -> None:
    killswitch_engage(actor=SYSTEM, target=parse_target(f"agent:{agent.slug}"), reason="drill")
    assert client.agent().halted
    with pytest.raises(ActionHalted) as caught, client.guard(REFUND, **_refund("ch_5", 20)):
        pytest.fail("the block ran under a kill switch")
    assert caught.value.reasons[0].kind == "killswitch"


def test_the_agent_loads_its_release_and_follows_a_rollback(
    client: Oversight, live_url: str, agent: Any
) -> None:
    agent_update(actor=SYSTEM, agent=agent, instructions="Refund politely.", model_name="m-1")
    agent.refresh_from_db()
    release = client.release(session_id="conversation-7")
    assert (release.version, release.stage) == (agent.stable_version, "stable")
    assert (release.instructions, release.model) == ("Refund politely.", "m-1")
    release_rollback(actor=SYSTEM, release=agent.releases.get(version=release.version - 1))

    token = _token(agent)

    async def load() -> Any:
        async with AsyncOversight(live_url, token) as aclient:
            return await aclient.release("conversation-7")

    rolled_back = asyncio.run(load())
    assert rolled_back.version == release.version + 1 and rolled_back.instructions == ""


def test_in_a_canary_a_session_gets_the_candidate_and_its_decisions_say_so(
    client: Oversight, agent: Any
) -> None:
    from oversight.releases.assignment import bucket
    from tests.releases.helpers import canary_of_new_instructions

    candidate, _ = canary_of_new_instructions(agent, plan=[50, 100])
    # Sessions until three fall inside the canary and three outside (buckets hash the
    # agent's id, which differs between runs: twelve fixed sessions once all fell outside).
    sessions: list[str] = []
    inside: list[str] = []
    for number in range(1000):
        sessions.append(f"conversation-{number}")
        if bucket(agent.pk, candidate.version, sessions[-1]) < agent.canary_share:
            inside.append(sessions[-1])
        if len(inside) >= 3 and len(sessions) - len(inside) >= 3:
            break
    assert len(inside) >= 3 and len(sessions) - len(inside) >= 3
    for session in sessions:
        expected = candidate.version if session in inside else agent.stable_version
        release = client.release(session_id=session)
        assert release.version == expected
        assert release.stage == ("canary" if session in inside else "stable")
        assert release.instructions == ("Refund carefully." if session in inside else "")
        with client.guard(
            REFUND, "stripe:charge/ch_1", params={"amount": 5}, session_id=session
        ) as g:
            pass
        assert g.decision is not None and g.decision.release == expected


def test_a_session_keeps_the_release_it_loaded_when_the_canary_share_grows(
    client: Oversight, live_url: str, agent: Any
) -> None:
    """A session that loaded stable, whose bucket the canary's next share takes in: the
    client says with its asks which release it loaded, so its later actions are still
    decided (and counted) under stable; a session the client never loaded is assigned by
    its bucket. Sync and async clients alike."""
    from django.db import connection

    from oversight.releases.assignment import BUCKETS
    from oversight.releases.rollouts import rollout_advance
    from tests.releases.helpers import canary_of_new_instructions, sessions_in_buckets

    candidate, rollout = canary_of_new_instructions(agent, plan=[1, 50, 100])
    stable = agent.stable_version
    moving = sessions_in_buckets(
        agent, candidate, start=BUCKETS // 100, end=BUCKETS // 2, count=3, prefix="talk"
    )
    loaded, loaded_async, unloaded = moving
    assert client.release(session_id=loaded).version == stable
    token = _token(agent)

    def advance() -> None:  # in a thread of its own, whose connection is closed after
        try:
            rollout_advance(actor=SYSTEM, rollout=rollout)
        finally:
            connection.close()

    async def load_then_ask() -> int | None:
        async with AsyncOversight(live_url, token) as aclient:
            assert (await aclient.release(loaded_async)).version == stable
            # 50%: the three buckets are in (the ORM is not used on an event loop)
            await asyncio.to_thread(advance)
            return (
                await aclient.ask(REFUND, "stripe:charge/ch_1", session_id=loaded_async)
            ).release

    assert asyncio.run(load_then_ask()) == stable
    with client.guard(REFUND, "stripe:charge/ch_1", params={"amount": 5}, session_id=loaded) as g:
        pass
    assert g.decision is not None and g.decision.release == stable
    assert (
        client.ask(REFUND, "stripe:charge/ch_1", session_id=unloaded).release == candidate.version
    )


def test_a_staging_token_gets_a_dry_run_and_the_block_does_not_run(
    live_url: str, agent: Any, policy: None
) -> None:
    with Oversight(live_url, _token(agent, "staging")) as staging:
        assert staging.agent().environment == "staging"
        with pytest.raises(DryRun) as caught, staging.guard(REFUND, **_refund("ch_6", 20)):
            pytest.fail("the block ran in staging")
    assert Action.objects.get(pk=caught.value.action_id).status == "dry_run"


def test_a_failing_block_is_reported_failed_and_its_error_propagates(client: Oversight) -> None:
    with (
        pytest.raises(ValueError, match="card declined"),
        client.guard(REFUND, **_refund("ch_7", 20)) as g,
    ):
        raise ValueError("card declined")
    action = Action.objects.get(pk=g.action_id)
    assert (action.status, action.error) == ("failed", "ValueError: card declined")


def test_a_block_that_cannot_tell_whether_it_acted_reports_nothing(
    client: Oversight, live_url: str, agent: Any
) -> None:
    """`OutcomeUnknown` (the payment API timed out after the request left): no outcome is
    guessed, the exception propagates, and the action waits unreported for its people;
    the same key again is told it may have run, and does not run."""
    spec = GuardSpec(REFUND, **_refund("ch_u", 20), idempotency_key="refund-unknown-1")
    with pytest.raises(OutcomeUnknown, match="timed out"), Guard(client, spec) as g:
        raise OutcomeUnknown("the payment API timed out")
    assert g.outcome_unknown and g.result is None and g.report_error is None
    action = Action.objects.get(pk=g.action_id)
    assert (action.status, action.finished_at, action.reports_outcome) == ("allowed", None, True)

    ran = []
    with pytest.raises(ActionFinished, match="may already have run"), Guard(client, spec):
        ran.append(True)
    assert ran == []

    token = _token(agent)

    async def unknown_async() -> AsyncGuard:
        async with AsyncOversight(live_url, token) as aclient:
            guard = aclient.guard(REFUND, **_refund("ch_ua", 20))
            with pytest.raises(OutcomeUnknown):
                async with guard:
                    raise OutcomeUnknown("the payment API timed out")
            return guard

    ag = asyncio.run(unknown_async())
    assert ag.outcome_unknown and ag.result is None
    assert Action.objects.get(pk=ag.action_id).status == "allowed"
    assert Action.objects.filter(agent=agent).count() == 2


def test_the_decorator_derives_the_request_from_the_call(client: Oversight) -> None:
    @client.guard(
        REFUND,
        resource=lambda charge: f"stripe:charge/{charge}",
        params=lambda charge, amount: {"amount": amount, "charge": charge},
        reason=lambda ticket, **_: f"ticket {ticket}",
    )
    def refund(charge: str, amount: int, ticket: str = "T-1") -> dict[str, Any]:
        running = current_guard()
        assert running is not None and running.decision is not None
        assert running.decision.status == "allowed"
        return {"refunded": amount}

    assert refund("ch_8", 30, ticket="T-9") == {"refunded": 30}
    action = Action.objects.get(resource="stripe:charge/ch_8")
    assert action.params == {"amount": 30, "charge": "ch_8"}
    assert (action.reason, action.status, action.after) == (
        "ticket T-9",
        "succeeded",
        {"refunded": 30},
    )

    with pytest.raises(ActionDenied):
        refund("blocked-2", 30)


def test_the_async_client_guards_blocks_and_functions(
    live_url: str, agent: Any, policy: None
) -> None:
    token = _token(agent)

    async def scenario() -> list[str]:
        async with AsyncOversight(live_url, token, wait_timeout=5) as client:
            async with client.guard(REFUND, **_refund("ch_9", 20)) as g:
                g.after = {"refunded": 20}

            @client.guard(
                REFUND, resource=lambda charge: f"stripe:charge/{charge}", params={"amount": 5}
            )
            async def refund(charge: str) -> dict[str, Any]:
                await asyncio.sleep(0)
                return {"charge": charge}

            await refund("ch_10")
            with pytest.raises(ActionDenied):
                await refund("blocked-3")
            return [g.action_id or "", (await client.agent()).slug]

    action_id, slug = asyncio.run(scenario())
    assert slug == agent.slug
    assert Action.objects.get(pk=action_id).after == {"refunded": 20}
    assert Action.objects.get(resource="stripe:charge/ch_10").after == {"charge": "ch_10"}


def test_asking_again_with_one_idempotency_key_records_one_action(client: Oversight) -> None:
    first = client.ask(REFUND, **_refund("ch_11", 20), idempotency_key="refund-ch_11")
    again = client.ask(REFUND, **_refund("ch_11", 20), idempotency_key="refund-ch_11")
    assert (again.id, again.replayed, first.replayed) == (first.id, True, False)
    assert Action.objects.filter(resource="stripe:charge/ch_11").count() == 1
    with pytest.raises(Conflict):
        client.ask(REFUND, **_refund("ch_11", 21), idempotency_key="refund-ch_11")


class LoseAnswers(httpx.HTTPTransport):
    """Delivers requests, but loses the answers to the first `times` to the matching path."""

    def __init__(self, path_ending: str, times: int = 1) -> None:
        super().__init__()
        self.path_ending, self.lost, self.times = path_ending, 0, times

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path.endswith(self.path_ending) and self.lost < self.times:
            self.lost += 1
            response.close()
            raise httpx.ReadError("connection reset", request=request)
        return response


def test_a_retry_after_a_lost_answer_records_one_action(
    live_url: str, agent: Any, policy: None
) -> None:
    transport = LoseAnswers("/actions")
    with Oversight(live_url, _token(agent), transport=transport, backoff=0) as client:
        decision = client.ask(REFUND, **_refund("ch_12", 20))
    assert transport.lost == 1
    assert decision.replayed  # the retry got the first answer back
    assert Action.objects.filter(resource="stripe:charge/ch_12").count() == 1


@pytest.mark.parametrize(
    ("lost", "charge"),
    [
        # A report whose answer was lost is not an error.
        ("/result", "ch_13"),
        # A guard without a key of yours runs when its ask's answer was lost: its key is
        # its own (fresh), so the replay can only answer its own retry.
        ("/actions", "ch_14"),
    ],
)
def test_a_guard_whose_answer_was_lost_runs_once_and_reports(
    live_url: str, agent: Any, policy: None, lost: str, charge: str
) -> None:
    transport = LoseAnswers(lost)
    with (
        Oversight(live_url, _token(agent), transport=transport, backoff=0) as client,
        client.guard(REFUND, **_refund(charge, 20)) as g,
    ):
        g.after = {"refunded": 20}
    assert transport.lost == 1
    assert g.report_error is None and g.result is not None and g.result.status == "succeeded"
    assert Action.objects.filter(resource=f"stripe:charge/{charge}").count() == 1


class SwitchWhileLost(LoseAnswers):
    """Loses the first answer to an ask, and an admin engages the kill switch meanwhile."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return super().handle_request(request)
        except httpx.ReadError:
            killswitch_engage(actor=SYSTEM, target=parse_target("global"), reason="stop")
            raise


def test_a_guard_whose_answer_was_lost_as_the_kill_switch_was_pressed_does_not_run(
    live_url: str, agent: Any, policy: None
) -> None:
    """It was allowed before the switch; its retry comes after, and must not run."""
    transport = SwitchWhileLost("/actions")
    ran = []
    with (
        Oversight(live_url, _token(agent), transport=transport, backoff=0) as client,
        pytest.raises(Conflict) as refused,
        client.guard(REFUND, **_refund("ch_16", 20)),
    ):
        ran.append(True)
    assert (transport.lost, ran, refused.value.code) == (1, [], "halted_since")
    action = Action.objects.get(resource="stripe:charge/ch_16")
    assert action.status == "allowed"  # decided before the switch; now waits for a person


def _keyed(charge: str, key: str, **fields: Any) -> GuardSpec:
    return GuardSpec(action=REFUND, idempotency_key=key, **_refund(charge, 20), **fields)


def test_a_keyed_allowed_action_that_ran_unreported_does_not_run_again(
    client: Oversight,
) -> None:
    """A caller ran it and stopped before reporting (crashed): the same key again (a
    resumed run, a retried job) is told it may have run, and its block does not run."""
    crashed = Guard(client, _keyed("ch_15", "job-15"))
    crashed.__enter__()  # allowed; the block ran; never reported
    ran = []
    with pytest.raises(ActionFinished) as refused, Guard(client, _keyed("ch_15", "job-15")):
        ran.append(True)
    assert ran == []
    assert "may already have run" in str(refused.value) and refused.value.status == "allowed"
    assert Action.objects.get(resource="stripe:charge/ch_15").status == "allowed"


def test_the_async_guard_does_not_run_a_keyed_allowed_action_again_either(
    live_url: str, agent: Any, policy: None
) -> None:
    token = _token(agent)

    async def run() -> list[str]:
        ran = []
        async with AsyncOversight(live_url, token, retries=1) as client:
            crashed = AsyncGuard(client, _keyed("ch_16", "job-16"))
            await crashed.__aenter__()
            with pytest.raises(ActionFinished):
                async with AsyncGuard(client, _keyed("ch_16", "job-16")):
                    ran.append("again")
            # A key first asked by a guard that only decided (claim=False) is this one's.
            decider = AsyncGuard(client, _keyed("ch_17", "job-17", claim=False))
            await decider.__aenter__()
            async with AsyncGuard(client, _keyed("ch_17", "job-17", key_is_own=True)) as g:
                ran.append("decided earlier")
                g.after = {"refunded": 20}
        return ran

    assert asyncio.run(run()) == ["decided earlier"]
    assert Action.objects.get(resource="stripe:charge/ch_16").status == "allowed"
    assert Action.objects.get(resource="stripe:charge/ch_17").status == "succeeded"


def test_a_keyed_guard_whose_answer_was_lost_runs_once_and_reports(
    live_url: str, agent: Any, policy: None
) -> None:
    """A key that is not the guard's own (another caller may have asked with it), but the
    replay says the action was recorded by this very ask, whose first answer was lost:
    nobody was told to run it, so this guard runs it."""
    transport = LoseAnswers("/actions")
    with Oversight(live_url, _token(agent), transport=transport, backoff=0) as client:
        with Guard(client, _keyed("ch_18", "job-18")) as g:
            g.after = {"refunded": 20}
        ran_again = []
        with pytest.raises(ActionFinished), Guard(client, _keyed("ch_18", "job-18")):
            ran_again.append(True)  # it ran: the same key again is a replay like any other
    assert (transport.lost, ran_again) == (1, [])
    assert g.report_error is None and g.result is not None and g.result.status == "succeeded"
    assert Action.objects.get(resource="stripe:charge/ch_18").status == "succeeded"


def test_an_ask_that_gave_up_is_run_by_the_next_caller_of_its_key_only_once(
    live_url: str, agent: Any, policy: None
) -> None:
    """Every answer to the first ask lost (Oversight recorded it; the client gave up, so
    ran nothing): the next guard with that key in the same client runs it, once. Two of
    them at once: only one runs; a caller in another client is told it may have run."""
    transport = LoseAnswers("/actions", times=2)
    token = _token(agent)
    with Oversight(live_url, token, transport=transport, retries=1, backoff=0) as client:
        with pytest.raises(ConnectionFailed), Guard(client, _keyed("ch_19", "job-19")):
            pytest.fail("a guard that had no answer ran")
        action = Action.objects.get(resource="stripe:charge/ch_19")
        assert action.status == "allowed" and transport.lost == 2
        with (
            Oversight(live_url, token) as other,
            pytest.raises(ActionFinished),
            Guard(other, _keyed("ch_19", "job-19")),
        ):
            pytest.fail("another client's caller ran it")

        ran: list[str] = []
        outcomes: list[str] = []

        def run(name: str) -> None:
            try:
                with Guard(client, _keyed("ch_19", "job-19")) as g:
                    ran.append(name)
                    g.after = {"refunded": 20}
            except ActionFinished:
                outcomes.append("refused")

        threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert (len(ran), outcomes) == (1, ["refused"])
    action.refresh_from_db()
    assert (action.status, action.after) == ("succeeded", {"refunded": 20})


def test_the_async_client_runs_the_call_whose_answer_it_lost(
    live_url: str, agent: Any, policy: None
) -> None:
    token = _token(agent)

    class LoseFirstAnswer(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner, self.lost = httpx.AsyncHTTPTransport(), 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            if request.url.path.endswith("/actions") and not self.lost:
                self.lost += 1
                await response.aclose()
                raise httpx.ReadError("connection reset", request=request)
            return response

    async def run() -> tuple[int, str]:
        transport = LoseFirstAnswer()
        async with (
            AsyncOversight(live_url, token, transport=transport, backoff=0) as client,
            AsyncGuard(client, _keyed("ch_20", "job-20")) as g,
        ):
            g.after = {"refunded": 20}
        return transport.lost, g.result.status if g.result else ""

    assert asyncio.run(run()) == (1, "succeeded")


def test_api_errors_come_back_typed(client: Oversight, live_url: str, agent: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        client.ask("Not An Action", "stripe:charge/ch 1")
    assert set(caught.value.fields) == {"action", "resource"}
    # Its words name each field and what is wrong with it, for a caller that shows them.
    assert "resource: " in str(caught.value) and "whitespace" in str(caught.value)

    with pytest.raises(InvalidRequest) as caught:
        client.ask(REFUND, **_refund("ch_17", 1), reason="x" * 300_000)
    assert (caught.value.status_code, caught.value.code) == (413, "payload_too_large")

    with pytest.raises(NotFound):
        client.wait("00000000-0000-4000-8000-000000000000", timeout=0)

    decision = client.ask(REFUND, **_refund("ch_14", 20))
    with pytest.raises(Conflict, match="different action"):
        client.report(decision.id, "succeeded", **_refund("ch_15", 20), action=REFUND)
    client.report(decision.id, "succeeded")
    with pytest.raises(Conflict, match="already reported"):
        client.report(decision.id, "failed")

    with Oversight(live_url, "ovs_prod_unknown") as stranger, pytest.raises(AuthenticationError):
        stranger.agent()

    agent_update(actor=SYSTEM, agent=agent, status="paused")
    with pytest.raises(AgentUnavailable, match="paused"):
        client.ask(REFUND, **_refund("ch_16", 20))
