"""What the sync and async clients share: URLs, bodies, retry policy, answer parsing.

Only I/O differs between `Oversight` and `AsyncOversight`; everything that decides what to
send, whether to retry and what an answer means lives here, once.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import threading
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from .errors import (
    ActionFinished,
    ActionNotPermitted,
    ActionNotStarted,
    ApprovalTimeout,
    Conflict,
    ConnectionFailed,
    error_from_body,
    not_permitted_class,
)
from .models import Decision

API_PATH = "/api/v1"
MAX_WAIT_PER_REQUEST = 60  # the server's limit for ?wait=
MAX_ERROR_TEXT = 5000  # the server's limit for a result's `error`
USER_AGENT = "oversight-sdk-python/1"

# Network failures worth another attempt; timeouts and broken connections are
# TransportErrors too. Everything else (bad URL, our own bugs) fails at once.
RETRYABLE_ERRORS = (httpx.TransportError,)


def configured(url: str | None, token: str | None) -> tuple[str, str]:
    """The server and token given, or else from `OVERSIGHT_URL` and `OVERSIGHT_TOKEN`."""
    url = url or os.environ.get("OVERSIGHT_URL", "")
    token = token or os.environ.get("OVERSIGHT_TOKEN", "")
    if not url:
        raise ValueError("No Oversight server: pass url= or set OVERSIGHT_URL.")
    if not token:
        raise ValueError("No agent token: pass token= or set OVERSIGHT_TOKEN.")
    return url, token


def api_base(url: str) -> str:
    """`http://host:8000`, `http://host:8000/` and `http://host:8000/api/v1` all work."""
    base = url.rstrip("/")
    return base if base.endswith(API_PATH) else base + API_PATH


def environment_proxy(url: str) -> str | None:
    """The proxy the environment sets for `url` (`HTTPS_PROXY`, `ALL_PROXY`..., unless
    `NO_PROXY` names its host), as httpx reads them; None for a direct connection."""
    target = httpx.URL(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(target.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass_environment(target.host, proxies):
        return proxy
    return None


@dataclass(frozen=True)
class Endpoint:
    """Where a client's requests go (the API's base URL) and what each carries (the
    token's headers)."""

    base: str
    headers: dict[str, str]

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float,
    ) -> httpx.Request:
        """A request as both clients send it: built once, so every retry sends the same
        bytes, and handed straight to their transport, not through httpx's Client, whose
        cookies, redirects and URL merging cost more CPU than the request itself
        (docs/performance.md). Each phase of it is bounded by `timeout`."""
        return httpx.Request(
            method,
            self.base + path,
            content=encode(body) if body is not None else None,
            params=params,
            headers={**self.headers, **headers} if headers else self.headers,
            extensions={
                "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
            },
        )


def default_headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode(body: Any) -> bytes:
    """JSON for a request body. Encoded once, so every retry sends the same bytes."""
    return json.dumps(body, default=_json_default, ensure_ascii=False).encode("utf-8")


def action_path(action_id: Any) -> str:
    """The action's URL path; a malformed id fails here rather than on the server."""
    return f"/actions/{uuid.UUID(str(action_id))}"


def cancel_params(pending_only: bool) -> dict[str, str] | None:
    return {"pending_only": "true"} if pending_only else None


def action_body(
    *,
    action: str,
    resource: str,
    params: dict[str, Any] | None,
    reason: str,
    reversible: bool,
    before: Any,
    session_id: str,
    parent_id: Any,
    traceparent: str = "",
    reports_outcome: bool = False,
    resource_params: Sequence[str] | None = None,
    release: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action": action,
        "resource": resource,
        "params": params or {},
        "reason": reason,
        "reversible": reversible,
        "before": before,
        "session_id": session_id,
    }
    if parent_id:
        body["parent_id"] = str(parent_id)
    traceparent = traceparent or current_traceparent()
    if traceparent:
        body["traceparent"] = traceparent
    if reports_outcome:
        body["reports_outcome"] = True
    if resource_params:
        body["resource_params"] = list(resource_params)
    if release is not None:
        body["release"] = release
    return body


class LoadedReleases:
    """The release version each session loaded (`release(session_id)`), which the client
    sends with that session's asks: in a canary the session then keeps the release it
    runs while the share moves past it (docs/releases.md). At most `keep` sessions are
    remembered, the oldest forgotten first (a forgotten one is assigned by its bucket)."""

    def __init__(self, keep: int = 10_000) -> None:
        self._versions: dict[str, int] = {}
        self._keep = keep
        self._lock = threading.Lock()  # a sync client may be shared by threads

    def remember(self, session_id: str, version: int) -> None:
        if not session_id:  # a request without a session is its own session
            return
        with self._lock:
            self._versions.pop(session_id, None)
            self._versions[session_id] = version
            while len(self._versions) > self._keep:
                del self._versions[next(iter(self._versions))]

    def of(self, session_id: str) -> int | None:
        return self._versions.get(session_id) if session_id else None


class Asks:
    """How this client asks: each ask with a fresh request id (`X-Request-ID`, the same
    for every retry of it) beside its Idempotency-Key, and the ids of its asks that never
    had an answer (every attempt's answer lost, or the ask abandoned). Oversight answers a
    replayed key with the id of the ask that recorded the action: when that ask is one of
    these, no caller was told to run the action, so the caller of the replay may
    (`Decision.lost_answer`; once per id). At most `keep` ids are kept, the oldest
    forgotten first: a forgotten one is treated as any other caller's ask."""

    def __init__(self, keep: int = 10_000) -> None:
        self._unanswered: dict[str, bool] = {}
        self._keep = keep
        self._lock = threading.Lock()  # a sync client may be shared by threads

    @staticmethod
    def start(idempotency_key: str | None) -> tuple[str, dict[str, str]]:
        """A new ask's request id, and the headers to send it with."""
        request_id = uuid.uuid4().hex
        key = idempotency_key or uuid.uuid4().hex
        return request_id, {"Idempotency-Key": key, "X-Request-ID": request_id}

    def unanswered(self, request_id: str) -> None:
        """The ask `request_id` ended without an answer: nothing of it was run here."""
        with self._lock:
            self._unanswered[request_id] = True
            while len(self._unanswered) > self._keep:
                del self._unanswered[next(iter(self._unanswered))]

    def answer(self, request_id: str, response: httpx.Response, data: Any) -> Decision:
        """The decision an ask sent as `request_id` was answered with."""
        replayed = response.status_code == 200
        first = str(data.get("request_id") or "")
        lost = replayed and bool(first) and (first == request_id or self._take(first))
        return Decision.from_json(data, replayed=replayed, lost_answer=lost)

    def _take(self, request_id: str) -> bool:
        with self._lock:
            return self._unanswered.pop(request_id, False)


def current_traceparent() -> str:
    """The W3C trace context of the caller's current span, when OpenTelemetry is installed
    and a span is active (so Oversight can link the action to the trace); else ""."""
    try:
        from opentelemetry.propagate import inject
    except ImportError:
        return ""
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent", "")


def result_body(
    *,
    outcome: str,
    after: Any,
    error: str,
    action: str | None,
    resource: str | None,
    params: dict[str, Any] | None,
) -> dict[str, Any]:
    if outcome not in ("succeeded", "failed"):
        raise ValueError("outcome must be 'succeeded' or 'failed'")
    body: dict[str, Any] = {"outcome": outcome, "after": after, "error": error[:MAX_ERROR_TEXT]}
    # Sent only when given: the server then checks the result is for what it decided.
    for name, value in (("action", action), ("resource", resource), ("params", params)):
        if value is not None:
            body[name] = value
    return body


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` more attempts after the first, `backoff * 2**n` seconds apart (capped)."""

    retries: int = 3
    backoff: float = 0.2
    max_delay: float = 10.0

    def should_retry_status(self, status_code: int, attempt: int) -> bool:
        return attempt <= self.retries and (status_code >= 500 or status_code == 429)

    def should_retry_error(self, attempt: int) -> bool:
        return attempt <= self.retries

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds before attempt `attempt + 1`; a server's Retry-After wins if sooner
        than `max_delay`."""
        if response is not None:
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                return min(float(retry_after), self.max_delay)
        return min(self.backoff * 2 ** (attempt - 1), self.max_delay)


def answer(response: httpx.Response, *, attempts: int) -> Any:
    """The JSON of a successful answer, or the typed `APIError` raised for an error."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        raise error_from_body(
            response.status_code,
            body,
            request_id=response.headers.get("X-Request-Id", ""),
            attempts=attempts,
        )
    return body


def connection_failed(exc: Exception, attempts: int) -> ConnectionFailed:
    return ConnectionFailed(
        f"could not reach Oversight after {attempts} attempt(s): {type(exc).__name__}: {exc}",
        attempts=attempts,
    )


def poll_seconds(remaining: float) -> float:
    """The `?wait=` for the next long-poll: the time left, within the server's limit."""
    return max(0.0, min(float(MAX_WAIT_PER_REQUEST), round(remaining, 2)))


def require_runnable(decision: Decision, *, waited: float) -> Decision:
    """Return the decision if the action may run now; otherwise raise the matching error."""
    if decision.allowed:
        return decision
    if decision.pending:
        raise ApprovalTimeout(decision, waited)
    raise not_permitted_class(decision.status)(decision)


def not_started(current: Decision, refusal: Conflict) -> ActionNotPermitted:
    """Why an approved action's run was not claimed (`start` refused, not for another
    caller's claim): its status now (cancelled by a kill switch, expired...), or, still
    approved, Oversight's own words (a tool whose definition changed since its approval).
    Never a decision to run: only a granted claim is one."""
    if current.allowed or current.pending:
        return ActionNotStarted(current, refusal.message)
    return not_permitted_class(current.status)(current)


def may_have_run(current: Decision, named: str = "action") -> str:
    """Why an action answered from a replayed idempotency key does not run again: the
    caller first answered may have run it and stopped before reporting. ``named``: what
    the action's id is called in the sentence."""
    return (
        f"this call was {current.status} earlier and may already have run ({named} "
        f"{current.id}); its outcome has not been reported"
    )


def halted_since(exc: Exception) -> bool:
    """Oversight refused a replayed ask (409 ``halted_since``): the call was allowed before
    a kill switch that halts the agent now, and may have run then."""
    return isinstance(exc, Conflict) and exc.code == "halted_since"


HALTED_SINCE = (
    "a kill switch has halted this agent since this call was allowed; it may already "
    "have run then: an owner records what happened on its page in Oversight"
)


def refuse_replayed_allowed(first: Decision, current: Decision, *, key_is_own: bool) -> None:
    """An `allowed` action is claimed by its first answer; a replay of that answer to a
    caller's key (`first.replayed`), with the action still `allowed` now (`current`), may
    come after a caller that ran it and never reported: it does not run again
    (ActionFinished). Unless the key is this caller's own (`key_is_own`: a fresh key of
    one ask, so the replay answers its own retry; or a key first asked by a guard that
    only decided: GuardSpec.key_is_own), or the replay answers an ask of this client's whose
    answer never came (`first.lost_answer`: nobody was told to run it). An `approved`
    action is claimed with `start` instead."""
    if first.replayed and current.status == "allowed" and not (key_is_own or first.lost_answer):
        raise ActionFinished(current, f"Not run again: {may_have_run(current)}.")


class ReportedAsSaid(Exception):
    """An error reported in its own words, without its class's name: a tool's error that
    an adapter relays as the framework gave it."""


def error_text(exc: BaseException) -> str:
    """What a failed outcome's report says of ``exc``: its class's name and its words."""
    if isinstance(exc, ReportedAsSaid) and str(exc):
        return str(exc)[:MAX_ERROR_TEXT]
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_ERROR_TEXT]


def reported_already(decision: Decision, outcome: str) -> bool:
    """After a retried report got 409: was it our own first attempt that got through?"""
    return decision.status == outcome
