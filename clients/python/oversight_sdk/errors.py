"""Everything the SDK raises is an `OversightError`.

Two families:

- `APIError` and `OversightUnavailable`: the request itself failed (a 4xx answer, or no
  answer at all after retries). The agent has no decision and must not act.
- `ActionNotPermitted`: Oversight answered, and the answer is not "go ahead" (denied,
  halted, rejected, expired, dry run, or still pending when the wait ran out). Raised by
  `guard`; `ask` and `wait` return the raw `Decision` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Decision, Reason, Vote


class OversightError(Exception):
    """Base class of every error the SDK raises."""


class OutcomeUnknown(Exception):
    """Raised by the agent's own code in a guarded block when it cannot tell whether the
    action happened (the payment API timed out after the request was sent): the guard
    then reports no outcome, rather than `failed`, and lets it propagate. The action stays
    unreported, so the agent's people are alerted and record what happened on its page;
    asking again with the same idempotency key is told it may already have run."""


# -- the request failed ---------------------------------------------------------------


class OversightUnavailable(OversightError):
    """No usable answer (network errors or 5xx after every retry): do not act."""


class ConnectionFailed(OversightUnavailable):
    """Oversight could not be reached, or the connection broke, on every attempt."""

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class APIError(OversightError):
    """Oversight answered with an error: `{"error": {"code", "message", "fields"}}`."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        fields: dict[str, list[str]] | None = None,
        *,
        request_id: str = "",
        attempts: int = 1,
    ) -> None:
        detail = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in (fields or {}).items())
        super().__init__(f"{status_code} {code}: {message}" + (f" ({detail})" if detail else ""))
        self.status_code = status_code
        self.code = code
        self.message = message
        self.fields: dict[str, list[str]] = fields or {}
        self.request_id = request_id  # the server's X-Request-Id, to find its logs
        self.attempts = attempts


class InvalidRequest(APIError):
    """400, 413 (body over 256 KiB) or 422 (validation; see `fields`)."""


class AuthenticationError(APIError):
    """401: the token is missing, unknown or revoked."""


class AgentUnavailable(APIError):
    """403: the agent is paused or retired."""


class NotFound(APIError):
    """404: no such action for this agent."""


class Conflict(APIError):
    """409: an idempotency key reused with another body, a result reported twice, a
    result for an action that may not run, a result for a different action, or an
    acknowledgement of an action that did not end without running."""


class RateLimited(APIError):
    """429 on every attempt."""


class ServerError(APIError, OversightUnavailable):
    """5xx on every attempt. Never an allow: do not act."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequest,
    401: AuthenticationError,
    403: AgentUnavailable,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
}


def api_error_class(status_code: int) -> type[APIError]:
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, APIError)


# -- Oversight answered, and the answer is not "go ahead" ------------------------------


class ActionNotPermitted(OversightError):
    """The action may not run. `decision` holds the full answer, `reasons` why."""

    def __init__(self, decision: Decision, message: str = "") -> None:
        self.decision = decision
        super().__init__(message or self._describe(decision))

    @property
    def action_id(self) -> str:
        return self.decision.id

    @property
    def status(self) -> str:
        return self.decision.status

    @property
    def reasons(self) -> list[Reason]:
        return self.decision.reasons

    @property
    def votes(self) -> list[Vote]:
        """Every reviewer's vote, oldest first (empty when no person voted)."""
        return self.decision.votes

    @property
    def comment(self) -> str:
        """The deciding reviewer's comment: for a rejection, why she denied it."""
        return self.decision.comment

    @property
    def decided_by(self) -> str | None:
        """The deciding reviewer's name, or None when no person decided."""
        return self.decision.decided_by

    @staticmethod
    def _describe(decision: Decision) -> str:
        why = "; ".join(r.text for r in decision.reasons) or "no reason given"
        vote = decision.deciding_vote
        if vote is not None and vote.vote == "deny":
            why = f"denied by {vote.name}: {vote.comment}"
        return f"action {decision.id} is {decision.status} ({why})"


class ActionDenied(ActionNotPermitted):
    """Policy, a limit, or an error on the decision path said no."""


class ActionHalted(ActionNotPermitted):
    """A kill switch (global, team or agent) is engaged."""


class ActionRejected(ActionNotPermitted):
    """A held action that will not run: a reviewer rejected it, it was cancelled, or (see
    `ActionExpired`) nobody decided in time. `status` says which."""


class ActionExpired(ActionRejected):
    """A held action nobody decided before it expired (a denial)."""


class ActionEdited(ActionNotPermitted):
    """A reviewer approved the action with edited params (`decision.params`, and
    `decision.requested_params` as asked), and this guard cannot run them: a `with`
    block that did not say `accept_edits=True`, or a decorated function whose arguments
    the edited params do not map onto. The guard has cancelled the action, so nothing
    runs that nobody approved; run the edited params yourself or ask again."""


class DryRun(ActionNotPermitted):
    """A staging token: the action was decided and recorded, and must not run."""


class ApprovalTimeout(ActionNotPermitted):
    """Nobody decided before the wait ran out. `guard` has cancelled the action on the
    server (`give_up`), so no reviewer approves what will not run; ask again to retry.
    (A guard made with `give_up=False` leaves it pending, to come back for it.)
    (`wait` itself never raises this: it returns the still pending decision.)"""

    def __init__(self, decision: Decision, waited: float) -> None:
        self.waited = waited
        super().__init__(
            decision, f"action {decision.id} is still pending after {waited:.1f}s of waiting"
        )


def not_permitted_class(status: str) -> type[ActionNotPermitted]:
    return _NOT_PERMITTED.get(status, ActionNotPermitted)


class ActionFinished(ActionNotPermitted):
    """The action has run already (a replayed idempotency key), or was started by another
    caller and may have run: it runs at most once."""


class ActionNotStarted(ActionNotPermitted):
    """Oversight would not start an approved action (`claim`): a call of a tool whose
    definition changed since it was approved, before an owner accepts the new one. Its
    approval stands; it must not run now. The message is Oversight's own."""


_NOT_PERMITTED: dict[str, type[ActionNotPermitted]] = {
    "denied": ActionDenied,
    "halted": ActionHalted,
    "rejected": ActionRejected,
    "cancelled": ActionRejected,
    "expired": ActionExpired,
    "dry_run": DryRun,
    "succeeded": ActionFinished,
    "failed": ActionFinished,
    "rolled_back": ActionFinished,
}


def error_from_body(status_code: int, body: Any, *, request_id: str, attempts: int) -> APIError:
    """The typed error for an error answer, tolerant of bodies that are not our shape
    (a proxy's HTML 502, say)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"code": "http_error", "message": f"HTTP {status_code}"}
    fields = error.get("fields")
    return api_error_class(status_code)(
        status_code,
        str(error.get("code") or "http_error"),
        str(error.get("message") or f"HTTP {status_code}"),
        fields if isinstance(fields, dict) else {},
        request_id=request_id,
        attempts=attempts,
    )
