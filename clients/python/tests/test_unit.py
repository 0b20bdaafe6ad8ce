"""The SDK's pure logic: argument derivation, error mapping and the retry policy.

Behaviour against Oversight itself is in the server's tests/sdk/ and, for every
integration alike, in conformance/ (a live server). Here httpx's MockTransport
stands in for the network only where a live server cannot be made to misbehave (5xx,
broken connections, odd bodies).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from oversight_sdk import (
    ActionDenied,
    ActionExpired,
    ActionHalted,
    ActionNotPermitted,
    ActionNotStarted,
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
    Oversight,
    OversightUnavailable,
    ServerError,
    _http,
)
from oversight_sdk._extras import EXTRAS
from oversight_sdk.adapters import ToolAction, default_action, refusal
from oversight_sdk.binding import GuardSpec, call_arguments, default_after, derive

ACTION_ID = "5b0c4b8e-7a53-4d5e-9d55-0a8f3b1f6c11"


def _decision(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": ACTION_ID, "status": status, "reasons": [], "policy_version": 1, **extra}


def _error(status: int, code: str, message: str = "nope", **fields: list[str]) -> httpx.Response:
    body = {"error": {"code": code, "message": message, "fields": fields}}
    return httpx.Response(status, json=body, headers={"X-Request-Id": "req-1"})


def _client(
    handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any
) -> tuple[Oversight, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    options = {"retries": 2, "backoff": 0, **kwargs}
    client = Oversight(
        "http://oversight.test", "tok", transport=httpx.MockTransport(record), **options
    )
    return client, seen


def test_the_sdk_stands_alone_without_django(tmp_path: Path) -> None:
    """Copied out of the project under another name, it imports with httpx alone."""
    shutil.copytree(Path(_http.__file__).parent, tmp_path / "vendored_sdk")
    check = (
        "import sys, vendored_sdk; "
        "leaked = sorted({m.split('.')[0] for m in sys.modules} & {'django', 'oversight'}); "
        "assert not leaked, leaked; "
        "assert vendored_sdk.Oversight and vendored_sdk.AsyncOversight"
    )
    subprocess.run([sys.executable, "-c", check], cwd=tmp_path, check=True)


# -- the integrations' extras ---------------------------------------------------------------

INTEGRATIONS = {
    "mcp": "oversight_sdk.mcp.cli",
    "langchain": "oversight_sdk.adapters.langchain",
    "openai-agents": "oversight_sdk.adapters.openai_agents",
    "pydantic-ai": "oversight_sdk.adapters.pydantic_ai",
    "claude-agent": "oversight_sdk.adapters.claude_agent",
}
# In a child interpreter: the extra's modules cannot be found, as where it is not installed.
WITHOUT = """
import sys
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in sys.argv[1:]:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Absent())
"""


def test_every_extra_of_the_package_is_known_to_its_integrations() -> None:
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert set(project["project"]["optional-dependencies"]) == set(EXTRAS) == set(INTEGRATIONS)


@pytest.mark.parametrize("extra", sorted(INTEGRATIONS))
def test_an_integration_without_its_extra_names_the_extra_to_install(extra: str) -> None:
    check = f"{WITHOUT}\nimport {INTEGRATIONS[extra]}"
    ran = subprocess.run(
        [sys.executable, "-c", check, *EXTRAS[extra]], capture_output=True, text=True
    )
    assert ran.returncode == 1
    last = ran.stderr.strip().splitlines()[-1]
    assert last.startswith("oversight_sdk._extras.ExtraNotInstalled: ")
    assert f"needs the {extra!r} extra" in last
    assert f"pip install './clients/python[{extra}]'" in last


def test_the_proxys_command_without_its_extra_says_so_in_one_line() -> None:
    command = "from oversight_sdk._commands import oversight_mcp\nsys.exit(oversight_mcp())"
    check = f"{WITHOUT}\n{command}"
    ran = subprocess.run(
        [sys.executable, "-c", check, *EXTRAS["mcp"]], capture_output=True, text=True
    )
    assert ran.returncode == 2
    assert ran.stderr.startswith("oversight-mcp: oversight_sdk.mcp needs the 'mcp' extra")
    assert len(ran.stderr.strip().splitlines()) == 1


def test_the_base_package_and_the_adapters_common_part_need_no_extra() -> None:
    every = [module for modules in EXTRAS.values() for module in modules]
    check = f"{WITHOUT}\nimport oversight_sdk, oversight_sdk.adapters, oversight_sdk.guard"
    subprocess.run([sys.executable, "-c", check, *every], check=True)


def test_tools_nobody_described_are_still_asked_for() -> None:
    described = default_action("Send Email")
    assert (described.action, described.resource) == ("tool.send_email", "tool:send_email")


# -- deriving a request from the decorated call ---------------------------------------------


def update_contact(contact_id: str, fields: dict[str, Any], *, dry: bool = False) -> None:
    """A stand-in for an agent's function."""


def test_it_binds_positional_and_keyword_arguments_alike() -> None:
    by_position = call_arguments(update_contact, ("c1", {"a": 1}), {})
    by_name = call_arguments(update_contact, (), {"fields": {"a": 1}, "contact_id": "c1"})
    assert by_position == by_name == {"contact_id": "c1", "fields": {"a": 1}, "dry": False}


def test_a_deriving_callable_gets_only_the_names_it_declares() -> None:
    arguments = {"contact_id": "c1", "fields": {"a": 1}, "dry": False}
    assert derive(lambda contact_id: f"crm:contact/{contact_id}", arguments) == "crm:contact/c1"


def test_a_deriving_callable_with_kwargs_gets_every_argument() -> None:
    arguments = {"contact_id": "c1", "fields": {"a": 1}}
    assert derive(lambda **kw: sorted(kw), arguments) == ["contact_id", "fields"]


def test_plain_values_are_sent_as_they_are() -> None:
    assert derive({"amount": 5}, {"amount": 7}) == {"amount": 5}


def test_the_spec_derives_resource_params_reason_and_before() -> None:
    spec = GuardSpec(
        action="crm.contact.update",
        resource=lambda contact_id: f"crm:contact/{contact_id}",
        params=lambda fields, **_: {"fields": sorted(fields)},
        reason=lambda contact_id: f"update {contact_id}",
        before=lambda contact_id: {"id": contact_id},
    )
    request = spec.request(call_arguments(update_contact, ("c1", {"b": 1, "a": 2}), {}))
    assert request.resource == "crm:contact/c1"
    assert request.params == {"fields": ["a", "b"]}
    assert request.reason == "update c1"
    assert request.before == {"id": "c1"}


def test_the_spec_says_which_params_the_resource_is_made_of() -> None:
    """Those named as an argument of the resource function (a reviewer's edit maps onto
    the argument of the same name), or a template's fields; nothing when it cannot tell."""

    def made_of(resource: Any, params: Any = None) -> Any:
        spec = GuardSpec(action="payments.refund", resource=resource, params=params)
        arguments = {"charge": "ch_1", "amount": 5, "order": {"id": 7}}
        return spec.request(arguments).resource_params

    def amount_and_charge(charge: str, amount: int, **_: Any) -> dict[str, Any]:
        return {"amount": amount, "charge": charge}

    assert made_of(lambda charge: f"stripe:charge/{charge}", amount_and_charge) == ("charge",)
    assert made_of(lambda charge: f"stripe:charge/{charge}") is None  # no params at all
    assert made_of(lambda **kw: f"stripe:charge/{kw['charge']}", amount_and_charge) is None
    assert made_of("stripe:charge/ch_1", amount_and_charge) is None
    said = GuardSpec(
        "payments.refund", "stripe:charge/ch_1", {"charge": "ch_1"}, resource_params=("charge",)
    )
    assert said.request().resource_params == ("charge",)  # a `with` block says it
    template = ToolAction("payments.refund", resource="stripe:charge/{charge}/{order[id]}")
    spec = template.spec(timeout=1)
    request = spec.request({"charge": "ch_1", "amount": 5, "order": {"id": 7}})
    assert (request.resource, request.resource_params) == (
        "stripe:charge/ch_1/7",
        ("charge", "order"),
    )
    assert request.ask_kwargs()["resource_params"] == ("charge", "order")
    broken = ToolAction("payments.refund", resource="stripe:charge/{charge").spec(timeout=1)
    with pytest.raises(ValueError):
        broken.request({"charge": "ch_1"})


def test_a_with_block_refuses_callables() -> None:
    spec = GuardSpec(action="crm.contact.update", resource=lambda contact_id: contact_id)
    with pytest.raises(TypeError, match="decorates a function"):
        spec.request(None)


def test_the_resource_must_come_out_a_string() -> None:
    spec = GuardSpec(action="crm.contact.update", resource=lambda contact_id: 42)
    with pytest.raises(TypeError, match="resource must be a string"):
        spec.request({"contact_id": "c1"})


def test_only_json_like_return_values_become_the_after_state() -> None:
    assert default_after({"ok": True}) == {"ok": True}
    assert default_after(object()) is None
    assert GuardSpec(action="a.b", resource="r", after=lambda r: {"n": r}).after_state(3) == {
        "n": 3
    }


def test_the_sync_guard_refuses_async_functions() -> None:
    client, _ = _client(lambda request: httpx.Response(500))

    async def refund() -> None: ...

    with pytest.raises(TypeError, match="AsyncOversight"):
        client.guard("payments.refund", "stripe:charge/ch_1")(refund)


def test_the_async_guard_refuses_sync_functions() -> None:
    client = AsyncOversight("http://oversight.test", "tok")
    with pytest.raises(TypeError, match="async functions only"):
        client.guard("payments.refund", "stripe:charge/ch_1")(update_contact)


# -- answers and errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, InvalidRequest),
        (401, AuthenticationError),
        (403, AgentUnavailable),
        (404, NotFound),
        (409, Conflict),
        (413, InvalidRequest),
        (422, InvalidRequest),
    ],
)
def test_4xx_answers_raise_typed_errors_at_once(status: int, error_class: type) -> None:
    client, seen = _client(lambda request: _error(status, "some_code", "why", action=["bad"]))
    with pytest.raises(error_class) as caught:
        client.ask("payments.refund", "stripe:charge/ch_1")
    assert (caught.value.status_code, caught.value.code) == (status, "some_code")
    assert caught.value.message == "why"
    assert caught.value.fields == {"action": ["bad"]}
    assert caught.value.request_id == "req-1"
    assert len(seen) == 1  # not retried


def test_5xx_is_retried_with_the_same_idempotency_key() -> None:
    answers = iter([httpx.Response(503), _error(500, "internal_error")])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(201, json=_decision("allowed")))

    client, seen = _client(handler)
    decision = client.ask("payments.refund", "stripe:charge/ch_1", params={"amount": 5})
    assert decision.status == "allowed" and not decision.replayed
    keys = {request.headers["Idempotency-Key"] for request in seen}
    assert len(seen) == 3 and len(keys) == 1
    assert len({request.content for request in seen}) == 1  # the same body every time


def test_each_ask_gets_its_own_idempotency_key() -> None:
    client, seen = _client(lambda request: httpx.Response(201, json=_decision("allowed")))
    client.ask("payments.refund", "stripe:charge/ch_1")
    client.ask("payments.refund", "stripe:charge/ch_1")
    assert seen[0].headers["Idempotency-Key"] != seen[1].headers["Idempotency-Key"]


def test_a_500_after_every_retry_raises_and_the_guard_never_runs_its_block() -> None:
    client, seen = _client(lambda request: _error(500, "internal_error", "do not act"))
    ran = []
    with (
        pytest.raises(ServerError) as caught,
        client.guard("payments.refund", "stripe:charge/ch_1"),
    ):
        ran.append(True)
    assert not ran
    assert isinstance(caught.value, OversightUnavailable)
    assert caught.value.attempts == 3 and len(seen) == 3


def test_a_proxy_error_page_still_maps_to_a_server_error() -> None:
    client, _ = _client(lambda request: httpx.Response(502, text="<html>Bad gateway</html>"))
    with pytest.raises(ServerError) as caught:
        client.agent()
    assert caught.value.code == "http_error"


def test_network_errors_are_retried_then_raise_connection_failed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client, seen = _client(handler)
    with pytest.raises(ConnectionFailed) as caught:
        client.ask("payments.refund", "stripe:charge/ch_1")
    assert caught.value.attempts == 3 and len(seen) == 3


def test_a_replayed_answer_is_marked() -> None:
    client, _ = _client(lambda request: httpx.Response(200, json=_decision("denied")))
    assert client.ask("payments.refund", "stripe:charge/ch_1", idempotency_key="k").replayed


def test_wait_long_polls_again_until_decided(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([_decision("pending"), _decision("pending"), _decision("approved")])
    client, seen = _client(lambda request: httpx.Response(200, json=next(answers)))
    monkeypatch.setattr("oversight_sdk.client.time.sleep", lambda seconds: None)
    decision = client.wait(ACTION_ID, timeout=150)
    assert decision.status == "approved"
    assert [float(request.url.params["wait"]) for request in seen] == [60, 60, 60]


def test_the_body_is_json_with_dates_uuids_and_decimals() -> None:
    import datetime as dt
    import decimal
    import uuid

    body = _http.encode(
        {"at": dt.date(2026, 1, 2), "id": uuid.UUID(ACTION_ID), "n": decimal.Decimal("2.50")}
    )
    assert json.loads(body) == {"at": "2026-01-02", "id": ACTION_ID, "n": 2.5}


# -- the retry policy and small helpers ------------------------------------------------------


def test_backoff_doubles_and_honours_retry_after() -> None:
    policy = _http.RetryPolicy(retries=3, backoff=0.2, max_delay=10)
    assert [policy.delay(n) for n in (1, 2, 3)] == [0.2, 0.4, 0.8]
    assert policy.delay(1, httpx.Response(429, headers={"Retry-After": "3"})) == 3
    assert policy.delay(1, httpx.Response(429, headers={"Retry-After": "999"})) == 10


def test_only_5xx_and_429_are_retried_and_only_while_attempts_remain() -> None:
    policy = _http.RetryPolicy(retries=2)
    assert policy.should_retry_status(503, attempt=1)
    assert policy.should_retry_status(429, attempt=2)
    assert not policy.should_retry_status(503, attempt=3)
    assert not policy.should_retry_status(409, attempt=1)


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://h:8000", "http://h:8000/api/v1"),
        ("http://h:8000/", "http://h:8000/api/v1"),
        ("http://h:8000/api/v1/", "http://h:8000/api/v1"),
    ],
)
def test_the_api_path_is_added_once(url: str, base: str) -> None:
    assert _http.api_base(url) == base


def test_the_long_poll_is_capped_at_the_servers_limit() -> None:
    assert [_http.poll_seconds(s) for s in (-1, 0, 0.2, 30, 61, 500)] == [0, 0, 0.2, 30, 60, 60]


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        ("denied", ActionDenied),
        ("halted", ActionHalted),
        ("rejected", ActionRejected),
        ("cancelled", ActionRejected),
        ("expired", ActionExpired),
        ("dry_run", DryRun),
        ("pending", ApprovalTimeout),
        ("succeeded", ActionNotPermitted),
    ],
)
def test_each_final_status_has_its_error(status: str, error_class: type) -> None:
    decision = Decision.from_json(
        _decision(status, reasons=[{"kind": "rule", "name": "r", "effect": "deny", "detail": "d"}])
    )
    with pytest.raises(error_class) as caught:
        _http.require_runnable(decision, waited=1.0)
    assert caught.value.status == status
    assert caught.value.action_id == ACTION_ID
    assert [r.name for r in caught.value.reasons] == ["r"]


def test_allowed_and_approved_may_run() -> None:
    for status in ("allowed", "approved"):
        decision = Decision.from_json(_decision(status))
        assert _http.require_runnable(decision, waited=0) is decision


def test_an_expiry_is_a_rejection_too() -> None:
    assert issubclass(ActionExpired, ActionRejected)


def test_decisions_parse_the_servers_timestamps() -> None:
    decision = Decision.from_json(_decision("pending", expires_at="2026-11-24T01:06:12.615Z"))
    assert decision.expires_at is not None and decision.expires_at.tzinfo is not None


def _approved(**extra: Any) -> Decision:
    voter = {"username": "rita", "name": "Rita Reviewer"}
    vote = {"vote": "approve", "voter": voter, "comment": "", **extra.pop("vote", {})}
    return Decision.from_json(_decision("approved", votes=[vote], **extra))


def test_an_approval_note_says_what_the_approval_edited_and_said() -> None:
    asked, approved = {"charge": "ch_1", "amount": 150}, {"charge": "ch_1", "amount": 120}
    edited = {"edited": True, "params": approved, "requested_params": asked}
    assert _approved(**edited).approval_note == (
        "Oversight: Rita Reviewer approved this call with edited arguments (amount: 150 -> 120)."
    )
    both = _approved(vote={"comment": "30 was refunded already"}, **edited)
    assert both.approval_note == (
        "Oversight: Rita Reviewer approved this call with edited arguments (amount: 150 -> 120),"
        " saying: 30 was refunded already."
    )
    said = _approved(vote={"comment": "Checked with the customer."})  # no second period
    assert said.approval_note == (
        "Oversight: Rita Reviewer approved this call, saying: Checked with the customer."
    )
    # Values as compact JSON; a param the edit left as it was is not named.
    values = {"edited": True, "params": {"to": ["a"], "note": None}, "requested_params": {}}
    assert _approved(**values).approval_note == (
        'Oversight: Rita Reviewer approved this call with edited arguments (to: null -> ["a"]).'
    )


def test_a_plain_approval_or_allow_has_no_note() -> None:
    assert _approved().approval_note == ""
    assert Decision.from_json(_decision("allowed")).approval_note == ""


def test_a_sessions_asks_say_which_release_it_loaded() -> None:
    """After `release(session_id)`, that session's asks carry the version it loaded (a
    canary then keeps the session on it); other sessions' asks, and a release loaded
    without a session, say nothing."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/agent/release"):
            version = 7 if request.url.params.get("session_id") == "s1" else 6
            return httpx.Response(200, json={"version": version, "digest": "d"})
        return httpx.Response(201, json=_decision("allowed"))

    client, seen = _client(answer)
    with client:
        assert client.release("s1").version == 7
        client.release("")
        for session in ("s1", "s2", ""):
            client.ask("payments.refund", "stripe:charge/ch_1", session_id=session)
    said = [json.loads(r.content).get("release") for r in seen if r.method == "POST"]
    assert said == [7, None, None]


def test_the_loaded_releases_are_bounded_oldest_forgotten_first() -> None:
    from oversight_sdk._http import LoadedReleases

    loaded = LoadedReleases(keep=2)
    for session, version in (("a", 1), ("b", 2), ("a", 3), ("c", 4)):
        loaded.remember(session, version)
    assert (loaded.of("a"), loaded.of("b"), loaded.of("c")) == (3, None, 4)


def test_a_decision_says_which_release_decided_it() -> None:
    assert Decision.from_json(_decision("allowed", release=7)).release == 7
    assert Decision.from_json(_decision("allowed", release=None)).release is None
    assert Decision.from_json(_decision("allowed")).release is None


def _task(after: Any = None, action: str = "payments.refund") -> Any:
    from oversight_sdk.compensation import CompensationTask

    return CompensationTask.from_json(
        {
            "id": ACTION_ID,
            "action": "payments.charge",
            "resource": "stripe:charge/ch_1",
            "params": {"amount": 5},
            "original": {
                "id": ACTION_ID,
                "action": action,
                "resource": "stripe:charge/ch_1",
                "params": {"amount": 5},
                "before": {"refunded": 0},
                "after": after,
            },
        }
    )


def test_a_compensator_reads_first_and_reports_each_outcome() -> None:
    from oversight_sdk import NotReversible
    from oversight_sdk.compensation import Compensators

    state = {"refunded": 5}
    ran: list[str] = []
    registry = Compensators()

    @registry.register("payments.refund", read=lambda task: dict(state))
    def undo(task: Any) -> Any:
        ran.append(task.id)
        if task.params.get("amount") == 5 and state.get("broken"):
            raise RuntimeError("the API answered 502")
        if state.get("final"):
            raise NotReversible("already paid out")
        return {"refunded": 0}

    assert registry.run(_task(after={"refunded": 5})).outcome == "undone"
    conflict = registry.run(_task(after={"refunded": 9}))
    assert (conflict.outcome, conflict.found, len(ran)) == ("conflict", {"refunded": 5}, 1)
    assert registry.run(_task(after=None, action="crm.note")).outcome == "skipped"
    state["broken"] = True
    failed = registry.run(_task(after={"refunded": 5, "broken": True}))
    assert (failed.outcome, failed.detail) == ("failed", "the API answered 502")
    del state["broken"]
    state["final"] = True
    assert registry.run(_task(after={"refunded": 5, "final": True})).outcome == "not_reversible"


def _outcomes(count: int) -> list[Any]:
    from oversight_sdk.compensation import CompensationOutcome

    return [
        CompensationOutcome(_task(after={"n": n}), "undone", left={"n": n}) for n in range(count)
    ]


def test_the_reporter_sends_at_once_and_batches_what_comes_while_it_sends() -> None:
    """One outcome goes alone; those put while it is on its way go together, in order;
    leaving the worker sends what waits, and a send that fails loses the thread nothing."""
    import threading

    from oversight_sdk.compensation import Reports

    first = _outcomes(6)
    sent: list[list[Any]] = []
    on_its_way, go_on = threading.Event(), threading.Event()

    def send(batch: list[Any]) -> list[Any]:
        sent.append(batch)
        if len(sent) == 1:
            on_its_way.set()
            assert go_on.wait(5)
        if len(sent) == 3:
            raise RuntimeError("the network went away")
        return batch

    with Reports(send) as reports:
        reports.put(first[0])
        assert on_its_way.wait(5)
        for outcome in first[1:4]:
            reports.put(outcome)  # while the first is on its way
        go_on.set()
        while len(sent) < 2:
            threading.Event().wait(0.01)
        reports.put(first[4])  # its send fails
        while len(sent) < 3:
            threading.Event().wait(0.01)
        reports.put(first[5])  # and the reporter goes on
    assert [[o.left["n"] for o in batch] for batch in sent] == [[0], [1, 2, 3], [4], [5]]
    assert [o.left["n"] for o in reports.taken] == [0, 1, 2, 3, 5]


def test_the_async_reporter_batches_alike() -> None:
    import asyncio

    from oversight_sdk.compensation import AsyncReports

    outcomes = _outcomes(4)
    sent: list[list[Any]] = []

    async def main() -> list[Any]:
        go_on = asyncio.Event()

        async def send(batch: list[Any]) -> list[Any]:
            sent.append(batch)
            if len(sent) == 1:
                await go_on.wait()
            return batch

        async with AsyncReports(send) as reports:
            reports.put(outcomes[0])
            await asyncio.sleep(0.01)  # the first is on its way
            for outcome in outcomes[1:]:
                reports.put(outcome)
            go_on.set()
        return reports.taken

    taken = asyncio.run(main())
    assert [[o.left["n"] for o in batch] for batch in sent] == [[0], [1, 2, 3]]
    assert [o.left["n"] for o in taken] == [0, 1, 2, 3]


def test_a_replay_refused_by_a_kill_switch_is_told_as_halted_not_as_oversight_down() -> None:
    """409 halted_since: the call was allowed before a switch engaged since; every adapter
    tells the model it was halted and may have run, not that Oversight could not decide."""
    since = Conflict(409, "halted_since", "A kill switch was engaged after this action...")
    told = refusal(since).text
    assert told.startswith("Not run: a kill switch has halted this agent"), told
    assert "may already have run" in told and "could not decide" not in told
    other = refusal(Conflict(409, "idempotency_key_reused", "another request")).text
    assert "could not decide" in other


def test_an_approved_call_oversight_would_not_start_is_told_in_its_words() -> None:
    """An adapter's model is told the call did not run and why, not "Oversight approved
    the call"."""
    approved = Decision(id="a1", status="approved")
    words = "The tool's definition changed since this call was approved"
    told = refusal(ActionNotStarted(approved, words)).text
    assert told == (
        "Not run: Oversight would not start the approved call (Oversight action a1): " + words
    ), told
