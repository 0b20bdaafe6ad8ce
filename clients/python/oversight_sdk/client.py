"""`Oversight`: the synchronous client."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Any

import httpx

from . import _http
from .binding import GuardSpec
from .compensation import (
    MAX_BATCH,
    RESULTS_PATH,
    CompensationOutcome,
    CompensationTask,
    Compensators,
    Reports,
    reported,
    results_body,
    task_path,
)
from .errors import ActionFinished, Conflict, OversightError
from .guard import Guard
from .models import AgentInfo, Decision, Release, ToolDefinition, ToolStatus

logger = logging.getLogger(__name__)


class Oversight:
    """Ask Oversight before acting.

    `url` is the server (`https://oversight.example.com`; `/api/v1` is added), `token` the
    agent's API token; by default `OVERSIGHT_URL` and `OVERSIGHT_TOKEN`. `timeout` bounds
    each HTTP request, `wait_timeout` how long `wait` and `guard` wait for a held action by
    default. Network errors, 5xx and 429 are retried `retries` times, `backoff * 2**n`
    seconds apart; `transport` is for tests.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        wait_timeout: float = 300.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url, token = _http.configured(url, token)
        self.timeout = timeout
        self.wait_timeout = wait_timeout
        self.retry = _http.RetryPolicy(retries=retries, backoff=backoff)
        self._compensators = Compensators()
        self._loaded = _http.LoadedReleases()  # by session: sent with its asks
        self._asks = _http.Asks()
        self._endpoint = _http.Endpoint(_http.api_base(url), _http.default_headers(token))
        proxy = _http.environment_proxy(url)
        self._transport = transport or httpx.HTTPTransport(proxy=proxy)

    # -- the API ------------------------------------------------------------------------

    def ask(
        self,
        action: str,
        resource: str,
        *,
        params: dict[str, Any] | None = None,
        reason: str = "",
        reversible: bool = False,
        before: Any = None,
        session_id: str = "",
        parent_id: str | uuid.UUID | None = None,
        idempotency_key: str | None = None,
        traceparent: str = "",
        reports_outcome: bool = False,
        resource_params: Sequence[str] | None = None,
    ) -> Decision:
        """Ask to take an action; return the decision as it is (never raises on deny).

        Every retry reuses one Idempotency-Key (a fresh one unless given), so a retry
        after a lost answer returns the first decision instead of recording a second, and
        one request id (`X-Request-ID`), by which a replay tells this client that the
        answer it lost was its own (`Decision.lost_answer`).
        `traceparent` (W3C trace context) links the action to the agent's trace; by
        default the current OpenTelemetry span's, when OpenTelemetry is installed.
        `reports_outcome=True` says the outcome will be reported once the action has run
        (`report`), as `guard` does: an allowed action not reported within 10 minutes then
        alerts the agent's people, since it may have run unseen. `resource_params` names
        the params the resource is made of (`["charge"]` for `stripe:charge/{charge}`):
        a reviewer may not edit those, as `guard`'s decorated functions and
        `oversight-mcp` say.
        """
        body = _http.action_body(
            action=action,
            resource=resource,
            params=params,
            reason=reason,
            reversible=reversible,
            before=before,
            session_id=session_id,
            parent_id=parent_id,
            traceparent=traceparent,
            reports_outcome=reports_outcome,
            resource_params=resource_params,
            release=self._loaded.of(session_id),
        )
        request_id, headers = self._asks.start(idempotency_key)
        try:
            response, data = self._request("POST", "/actions", body=body, headers=headers)
        except BaseException:
            self._asks.unanswered(request_id)  # not run here, whatever Oversight decided
            raise
        return self._asks.answer(request_id, response, data)

    def get(self, action_id: str | uuid.UUID) -> Decision:
        """The action as it is now."""
        return Decision.from_json(self._request("GET", _http.action_path(action_id))[1])

    def wait(self, action_id: str | uuid.UUID, timeout: float | None = None) -> Decision:
        """Long-poll a held action until it is decided or `timeout` seconds have passed
        (default `wait_timeout`); return the action as it is then, pending or not."""
        timeout = self.wait_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        path = _http.action_path(action_id)
        while True:
            seconds = _http.poll_seconds(deadline - time.monotonic())
            started = time.monotonic()
            _, data = self._request(
                "GET", path, params={"wait": seconds}, timeout=self.timeout + seconds
            )
            decision = Decision.from_json(data)
            remaining = deadline - time.monotonic()
            if not decision.pending or remaining <= 0:
                return decision
            if time.monotonic() - started < min(seconds, 0.25):
                time.sleep(min(0.25, remaining))  # a server that did not hold the poll

    def report(
        self,
        action_id: str | uuid.UUID,
        outcome: str,
        *,
        after: Any = None,
        error: str = "",
        action: str | None = None,
        resource: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> Decision:
        """Report `succeeded` or `failed` for an allowed or approved action, once.

        Pass the `action`, `resource` and `params` you ran to have the server check they
        are what it decided (an approval covers exactly one action).
        """
        body = _http.result_body(
            outcome=outcome,
            after=after,
            error=error,
            action=action,
            resource=resource,
            params=params,
        )
        path = _http.action_path(action_id)
        try:
            return Decision.from_json(self._request("POST", f"{path}/result", body=body)[1])
        except Conflict as exc:
            if exc.attempts > 1:  # our first attempt may have been recorded, answer lost
                current = self.get(action_id)
                if _http.reported_already(current, outcome):
                    return current
            raise

    def cancel(self, action_id: str | uuid.UUID, *, pending_only: bool = False) -> Decision:
        """Give up on a pending or approved action that has not run. `pending_only`: only
        while nobody has decided it (Conflict for one a person approved meanwhile)."""
        path = _http.action_path(action_id)
        params = _http.cancel_params(pending_only)
        return Decision.from_json((self._request("POST", f"{path}/cancel", params=params))[1])

    def start(self, action_id: str | uuid.UUID) -> Decision:
        """Claim the run of an approved action, before running it: granted once; a
        `Conflict` (`already_started`) after, when another caller has started it."""
        path = _http.action_path(action_id)
        return Decision.from_json((self._request("POST", f"{path}/start"))[1])

    def acknowledge(self, action_id: str | uuid.UUID) -> Decision:
        """Say the caller was told how an action ended without running (denied, rejected,
        expired...); recorded once. Refused (Conflict) for one that may still run or
        ran."""
        path = _http.action_path(action_id)
        return Decision.from_json((self._request("POST", f"{path}/acknowledge"))[1])

    def claim(self, decision: Decision) -> Decision:
        """An approved action's run claimed (`start`), as `guard` does before its block
        and `oversight-mcp` before forwarding: the action as it is then. Raises
        `ActionFinished` when another caller started it (it may have run), and the
        matching refusal when it may no longer run (cancelled by a kill switch...), or
        `ActionNotStarted` when Oversight would not start it though it is approved (a
        tool whose definition changed since its approval)."""
        try:
            return self.start(decision.id)
        except Conflict as exc:
            if exc.code == "already_started":
                raise ActionFinished(decision, f"action {decision.id}: {exc.message}") from None
            current = self.get(decision.id)
            raise _http.not_started(current, exc) from None

    def give_up(self, decision: Decision, *, even_if_approved: bool = False) -> Decision:
        """Cancel a held action nobody decided in time, so no one approves it in vain.

        Returns `decision` (still pending: the caller times out), or the action as a
        person decided it in the meantime (approved: it may run; rejected: it may not):
        the cancel applies only while it is pending, so an approval in that very moment
        wins. `even_if_approved`: an approved action is cancelled too (a guard that will
        not run the params a reviewer approved).
        """
        try:
            self.cancel(decision.id, pending_only=not even_if_approved)
        except Conflict:
            return self.get(decision.id)
        except OversightError as exc:  # it will expire on its own
            logger.warning("could not cancel action %s: %s", decision.id, exc)
        return decision

    def agent(self) -> AgentInfo:
        """This agent's own status: active, halted by a kill switch, environment..."""
        return AgentInfo.from_json(self._request("GET", "/agent")[1])

    def release(self, session_id: str = "") -> Release:
        """The release this session runs: its instructions, model and tools (sticky per
        `session_id`). Load them from here and a rollback needs no deploy of the agent.
        This client then says, with each of the session's asks, which release it runs:
        during a canary the session keeps it while the share moves past it."""
        params = {"session_id": session_id} if session_id else None
        release = Release.from_json(self._request("GET", "/agent/release", params=params)[1])
        self._loaded.remember(session_id, release.version)
        return release

    def tools(self, definitions: list[ToolDefinition]) -> list[ToolStatus]:
        """Show Oversight the tools this agent reaches (an MCP proxy does, on each listing):
        it pins each definition the first time it sees it, and answers whether the agent
        may use each tool and whether its definition changed since it was pinned."""
        body = {"tools": [definition.to_json() for definition in definitions]}
        _, data = self._request("POST", "/tools", body=body)
        return [ToolStatus.from_json(item) for item in data["tools"]]

    # -- compensators (undo) ----------------------------------------------------------

    def compensator(
        self, action: str, *, read: Callable[[CompensationTask], Any]
    ) -> Callable[[Callable[[CompensationTask], Any]], Callable[[CompensationTask], Any]]:
        """Register how to undo `action` (see oversight_sdk.compensation): `read` returns
        the resource's state now; the decorated function undoes and returns the state it
        left."""
        return self._compensators.register(action, read)

    def compensations(self, wait: float = 0) -> list[CompensationTask]:
        """Take the compensations to run (held for this worker for five minutes)."""
        _, data = self._request(
            "GET",
            "/compensations",
            params={"wait": wait},
            timeout=self.timeout + wait,
        )
        return [CompensationTask.from_json(item) for item in data]

    def compensate(self, task: CompensationTask) -> CompensationOutcome:
        """Run one task with its registered compensator and report the outcome."""
        outcome = self._compensators.run(task)
        _, data = self._request("POST", task_path(task.id), body=outcome.body())
        return replace(outcome, original_status=data.get("original_status", ""))

    def run_compensators(
        self, *, wait: float = 30, stop: Callable[[], bool] | None = None
    ) -> list[CompensationOutcome]:
        """The worker: long-poll for compensations and run them, newest original first,
        until `stop()` is true (or forever); returns what it did."""
        with Reports(self.report_compensations) as reports:
            while not (stop and stop()):
                for task in self.compensations(wait=wait):
                    reports.put(self._compensators.run(task))
        return reports.taken

    def report_compensations(
        self, outcomes: list[CompensationOutcome]
    ) -> list[CompensationOutcome]:
        """Report what was run, in one request per hundred; returns the outcomes Oversight
        took. One it did not take (taken by another worker meanwhile, or already
        reported), or a batch that could not be sent, is logged and left out: its lease
        runs out and the next worker reads the state first."""
        taken: list[CompensationOutcome] = []
        for start in range(0, len(outcomes), MAX_BATCH):
            batch = outcomes[start : start + MAX_BATCH]
            try:
                _, data = self._request("POST", RESULTS_PATH, body=results_body(batch))
            except OversightError as exc:
                logger.warning("%d compensations not reported: %s", len(batch), exc)
                continue
            taken += reported(batch, data)
        return taken

    def guard(
        self,
        action: str,
        resource: str | Callable[..., str],
        *,
        params: dict[str, Any] | Callable[..., dict[str, Any]] | None = None,
        reason: str | Callable[..., str] = "",
        reversible: bool = False,
        before: Any = None,
        session_id: str = "",
        parent_id: str | uuid.UUID | None = None,
        timeout: float | None = None,
        after: Callable[[Any], Any] | None = None,
        accept_edits: bool | None = None,
        resource_params: Sequence[str] | None = None,
    ) -> Guard:
        """A context manager and decorator that runs its block only when allowed.

        See `oversight_sdk.guard` (behaviour) and `oversight_sdk.binding` (callables for
        the decorator form). `timeout` bounds the wait for a held action; `after`, for the
        decorator form, turns the return value into the after-state. `accept_edits`: how
        params a reviewer edited are run (see `oversight_sdk.guard`). `resource_params`:
        the params the resource is made of, which a reviewer may not edit (by default,
        for the decorator form, those named as an argument of a resource function).
        """
        spec = GuardSpec(
            action=action,
            resource=resource,
            params=params,
            reason=reason,
            reversible=reversible,
            before=before,
            session_id=session_id,
            parent_id=parent_id,
            timeout=timeout,
            after=after,
            accept_edits=accept_edits,
            resource_params=tuple(resource_params) if resource_params is not None else None,
        )
        return Guard(self, spec)

    # -- plumbing -----------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[httpx.Response, Any]:
        seconds = self.timeout if timeout is None else timeout
        request = self._endpoint.request(
            method, path, body=body, params=params, headers=headers, timeout=seconds
        )
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._send(request)
            except _http.RETRYABLE_ERRORS as exc:
                if not self.retry.should_retry_error(attempt):
                    raise _http.connection_failed(exc, attempt) from exc
                time.sleep(self.retry.delay(attempt))
                continue
            if self.retry.should_retry_status(response.status_code, attempt):
                time.sleep(self.retry.delay(attempt, response))
                continue
            return response, _http.answer(response, attempts=attempt)

    def _send(self, request: httpx.Request) -> httpx.Response:
        """One request, straight to the transport (see `_http.Endpoint.request`)."""
        response = self._transport.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        response.request = request
        return response

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Oversight:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
