"""`guard`: ask, wait if held, run only on allowed/approved, report what happened.

Used as a context manager:

    with client.guard("payments.refund", resource="stripe:charge/ch_1",
                      params={"amount": 20}) as g:
        g.after = stripe.refund("ch_1", 20)

or as a decorator (see `oversight_sdk.binding` for deriving resource and params from
the call's arguments). The block or function runs only when the action is allowed or
approved; otherwise a subclass of `ActionNotPermitted` is raised before it starts. When
the block ends, `succeeded` is reported with `g.after`; when it raises, `failed` is
reported with the error text and the original exception propagates. When it raises
`OutcomeUnknown` (it cannot tell whether the action happened), nothing is reported: the
action is left for the agent's people to settle, and `g.outcome_unknown` is True.

A report that cannot be delivered (after retries) never hides what the block did: it is
logged on the `oversight_sdk` logger and kept in `g.report_error`.

A reviewer may approve a held action with edited params. The guard then runs what was
approved, or nothing: a decorated function is called with each edited param as its
argument of the same name (when that gives exactly the approved params); a `with` block
must read `g.params` and say so with `accept_edits=True`. Otherwise the guard cancels the
action and raises `ActionEdited`. The result is reported for the approved params.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ._http import error_text, refuse_replayed_allowed, require_runnable
from .binding import ActionRequest, GuardSpec, call_arguments, edited_arguments, rebind
from .errors import ActionEdited, OutcomeUnknown, OversightError
from .models import Decision

if TYPE_CHECKING:
    from .aio import AsyncOversight
    from .client import Oversight

logger = logging.getLogger("oversight_sdk")

F = TypeVar("F", bound=Callable[..., Any])

_current: contextvars.ContextVar[_GuardBase | None] = contextvars.ContextVar(
    "oversight_guard", default=None
)


def current_guard() -> _GuardBase | None:
    """The guard whose block is running in this thread or task, if any.

    Lets a decorated function set its own after-state: `current_guard().after = {...}`.
    """
    return _current.get()


class _GuardBase:
    """State shared by the sync and async guards: one instance per guarded run."""

    def __init__(
        self, spec: GuardSpec, default_timeout: float, arguments: dict[str, Any] | None
    ) -> None:
        self._spec = spec
        self._arguments = arguments  # the decorated call's, by name; None for a `with`
        self._timeout = spec.timeout if spec.timeout is not None else default_timeout
        self._token: contextvars.Token[_GuardBase | None] | None = None
        self.request: ActionRequest | None = None
        self.decision: Decision | None = None  # the allowing decision, once entered
        self.after: Any = None  # set it in the block: reported as the after-state
        self.result: Decision | None = None  # the action after the report
        self.report_error: OversightError | None = None
        self.outcome_unknown = False  # the block raised OutcomeUnknown: nothing reported
        # A decorated call's arguments changed by a reviewer's edit, by name.
        self.edited_arguments: dict[str, Any] = {}

    @property
    def action_id(self) -> str | None:
        return self.decision.id if self.decision else None

    @property
    def edited(self) -> bool:
        """True when a reviewer approved the action with edited params."""
        return bool(self.decision and self.decision.edited)

    @property
    def approval_note(self) -> str:
        """What the approval said beyond yes (the params a reviewer edited, her comment),
        as one sentence to show the model with the block's answer; "" when nothing
        (`Decision.approval_note`)."""
        return self.decision.approval_note if self.decision else ""

    @property
    def params(self) -> dict[str, Any]:
        """The params to run: as approved (edited by a reviewer, maybe) or as asked."""
        if self.decision is not None and self.decision.edited and self.decision.params is not None:
            return self.decision.params
        assert self.request is not None
        return self.request.params

    @property
    def votes(self) -> list[Any]:
        """The reviewers' votes on this action (empty when none voted)."""
        return self.decision.votes if self.decision else []

    def _start(self) -> ActionRequest:
        """Fresh state for this run (a `with` guard may be entered again) and its request."""
        self.decision = self.result = self.report_error = self.after = None
        self.outcome_unknown = False
        self.edited_arguments = {}
        self.request = self._spec.request(self._arguments)
        return self.request

    def _key_is_own(self) -> bool:
        """Whether a replay of this guard's key can only answer its own asks: a fresh key
        per run, or a key its caller says is its own (GuardSpec.key_is_own)."""
        return self._spec.idempotency_key is None or self._spec.key_is_own

    def _edit_refusal(self, decision: Decision) -> ActionEdited | None:
        """None when this guard can run the approved params (for a decorated call, its
        changed arguments are kept); else the error to raise once the action is
        cancelled."""
        if not decision.edited or decision.params is None:
            return None
        accept = self._spec.accept_edits
        what = f"action {decision.id} was approved with edited params {decision.params}"
        if accept is False:
            return ActionEdited(decision, f"{what}; this guard refuses edits")
        if self._arguments is None:
            if accept:
                return None
            return ActionEdited(
                decision,
                f"{what}; a `with` guard runs them only with accept_edits=True (read g.params)",
            )
        changed = edited_arguments(self._spec, self._arguments, decision.params)
        if changed is None:
            return ActionEdited(
                decision,
                f"{what}; they do not map onto the function's arguments by name, on the "
                "resource asked for",
            )
        self.edited_arguments = changed
        return None

    def _enter_block(self, decision: Decision, waited: float) -> None:
        self.decision = require_runnable(decision, waited=waited)
        self._token = _current.set(self)

    def _leave_block(self) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

    def _report_kwargs(self, exc: BaseException | None) -> dict[str, Any]:
        assert self.request is not None
        return {
            "outcome": "succeeded" if exc is None else "failed",
            "after": self.after,
            "error": "" if exc is None else error_text(exc),
            # Bound: the server refuses a result for anything other than what it decided
            # (or a reviewer approved).
            "action": self.request.action,
            "resource": self.request.resource,
            "params": self.params,
        }

    def _left_unknown(self, exc: BaseException | None) -> bool:
        """Whether the block said it cannot tell if the action happened: then no outcome
        is reported (a guess either way could be wrong), and its people settle it."""
        if not isinstance(exc, OutcomeUnknown):
            return False
        self.outcome_unknown = True
        logger.error(
            "the outcome of action %s is unknown (%s): not reported, for its people to settle",
            self.action_id,
            exc,
        )
        return True

    def _report_failed(self, exc: OversightError) -> None:
        self.report_error = exc
        logger.error("could not report the outcome of action %s: %s", self.action_id, exc)


class Guard(_GuardBase):
    """The synchronous guard, from `Oversight.guard`."""

    def __init__(
        self, client: Oversight, spec: GuardSpec, arguments: dict[str, Any] | None = None
    ) -> None:
        super().__init__(spec, client.wait_timeout, arguments)
        self._client = client

    def __enter__(self) -> Guard:
        request = self._start()
        started = time.monotonic()
        decision = self._client.ask(request.action, **request.ask_kwargs())
        if decision.replayed and not decision.pending:
            # An idempotency key seen before answers with the first decision; the action
            # may have run since. Only its status now says whether it may (still) run.
            current = self._client.get(decision.id)
            refuse_replayed_allowed(decision, current, key_is_own=self._key_is_own())
            decision = current
        if decision.pending:
            decision = self._client.wait(decision.id, self._timeout)
            if decision.pending and self._spec.give_up:
                decision = self._client.give_up(decision)
        refusal = self._edit_refusal(decision) if decision.allowed else None
        if refusal is not None:
            # Nothing runs that nobody approved: the approved edit is cancelled.
            self._client.give_up(decision, even_if_approved=True)
            raise refusal
        if decision.status == "approved" and self._spec.claim:  # one caller runs it: claimed
            decision = self._client.claim(decision)
        self._enter_block(decision, time.monotonic() - started)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._leave_block()
        assert self.decision is not None
        if self._left_unknown(exc):
            return False
        try:
            self.result = self._client.report(self.decision.id, **self._report_kwargs(exc))
        except OversightError as report_exc:
            self._report_failed(report_exc)
        return False  # never swallow the block's exception

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):
            raise TypeError("use AsyncOversight.guard to decorate an async function")
        spec, client = self._spec, self._client

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            run = Guard(client, spec, call_arguments(fn, args, kwargs))
            with run:
                call_args, call_kwargs = rebind(fn, args, kwargs, run.edited_arguments)
                result = fn(*call_args, **call_kwargs)
                if spec.after is not None or run.after is None:
                    run.after = spec.after_state(result)
            return result

        return guarded  # type: ignore[return-value]


class AsyncGuard(_GuardBase):
    """The asynchronous guard, from `AsyncOversight.guard`."""

    def __init__(
        self, client: AsyncOversight, spec: GuardSpec, arguments: dict[str, Any] | None = None
    ) -> None:
        super().__init__(spec, client.wait_timeout, arguments)
        self._client = client

    async def __aenter__(self) -> AsyncGuard:
        request = self._start()
        started = time.monotonic()
        decision = await self._client.ask(request.action, **request.ask_kwargs())
        if decision.replayed and not decision.pending:  # see Guard.__enter__
            current = await self._client.get(decision.id)
            refuse_replayed_allowed(decision, current, key_is_own=self._key_is_own())
            decision = current
        if decision.pending:
            decision = await self._client.wait(decision.id, self._timeout)
            if decision.pending and self._spec.give_up:
                decision = await self._client.give_up(decision)
        refusal = self._edit_refusal(decision) if decision.allowed else None
        if refusal is not None:
            # Nothing runs that nobody approved: the approved edit is cancelled.
            await self._client.give_up(decision, even_if_approved=True)
            raise refusal
        if decision.status == "approved" and self._spec.claim:  # see Guard.__enter__
            decision = await self._client.claim(decision)
        self._enter_block(decision, time.monotonic() - started)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._leave_block()
        assert self.decision is not None
        if self._left_unknown(exc):
            return False
        try:
            self.result = await self._client.report(self.decision.id, **self._report_kwargs(exc))
        except OversightError as report_exc:
            self._report_failed(report_exc)
        return False

    def __call__(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError("AsyncOversight.guard decorates async functions only")
        spec, client = self._spec, self._client

        @functools.wraps(fn)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            run = AsyncGuard(client, spec, call_arguments(fn, args, kwargs))
            async with run:
                call_args, call_kwargs = rebind(fn, args, kwargs, run.edited_arguments)
                result = await fn(*call_args, **call_kwargs)
                if spec.after is not None or run.after is None:
                    run.after = spec.after_state(result)
            return result

        return guarded
