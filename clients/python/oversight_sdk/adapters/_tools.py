"""What every framework adapter shares: how a tool call becomes an Oversight action, how
it runs under the SDK's guard, and what the model is told when it may not run.

One decision loop: a tool call is run through `Guard` / `AsyncGuard` (ask, wait while
held, give up after the wait, refuse params nobody approved, report the outcome), the
same code the decorator form uses, with the tool's arguments as the call's arguments. So
a reviewer's edit of a param is the tool's argument of the same name.

The adapters never raise for a refusal: the model gets the refusal's text as the tool's
answer and the tool does not run. Anything that goes wrong before the decision (Oversight
unreachable, a resource template that does not fit the call) is a refusal too: fail closed.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .._http import HALTED_SINCE, ReportedAsSaid, halted_since, may_have_run
from .._schema import ArgumentsRefused, check_arguments, check_types
from ..aio import AsyncOversight
from ..binding import GuardSpec
from ..client import Oversight
from ..errors import (
    ActionEdited,
    ActionExpired,
    ActionFinished,
    ActionHalted,
    ActionNotPermitted,
    ActionNotStarted,
    ActionRejected,
    ApprovalTimeout,
    DryRun,
    OversightError,
)
from ..guard import AsyncGuard, Guard

logger = logging.getLogger("oversight_sdk")

T = TypeVar("T")

DEFAULT_TIMEOUT = 300.0  # seconds a held call waits for a person before it gives up

# The framework's answer to the model with a note added (`_noted`).
Noted = Callable[[T, str], T]


@dataclass(frozen=True)
class ToolAction:
    """How calls to one tool are asked for.

    `resource` is a template over the call's arguments (`"stripe:charge/{charge}"`) or a
    callable of them by name; `params` a callable of them, by default the arguments
    themselves (so a reviewer's edit maps back onto them by name); `reason` text or a
    callable.
    """

    action: str
    resource: str | Callable[..., str]
    params: Callable[..., dict[str, Any]] | None = None
    reason: str | Callable[..., str] = ""

    def spec(
        self,
        *,
        timeout: float,
        session_id: str = "",
        idempotency_key: str | None = None,
        give_up: bool = True,
        claim: bool = True,
        key_is_own: bool = False,
    ) -> GuardSpec:
        resource = self.resource
        if isinstance(resource, str):
            resource = _Template(resource)
        return GuardSpec(
            action=self.action,
            resource=resource,
            params=self.params or _all_arguments,
            reason=self.reason,
            session_id=session_id,
            timeout=timeout,
            idempotency_key=idempotency_key,
            give_up=give_up,
            claim=claim,
            key_is_own=key_is_own,
        )


class _Template:
    """A resource template filled with the call's arguments (all of them, by name)."""

    def __init__(self, template: str) -> None:
        self.template = template
        # The arguments it is made of (`{charge}`, `{order.id}`: charge, order), which
        # Oversight keeps a reviewer from editing (binding.resource_params_of); None for a
        # template that is not one (filling it fails, and the call is refused).
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(template) if name]
        except ValueError:
            self.argument_names: frozenset[str] | None = None
        else:
            self.argument_names = frozenset(re.split(r"[.\[]", name)[0] for name in fields)

    def __call__(self, **arguments: Any) -> str:
        return self.template.format_map(arguments)


def _all_arguments(**arguments: Any) -> dict[str, Any]:
    return dict(arguments)


def default_action(tool_name: str) -> ToolAction:
    """A tool nobody described: action `tool.<name>` on resource `tool:<name>`. Still
    asked for (a tool without a grant is denied), never run unasked."""
    slug = re.sub(r"[^a-z0-9_-]+", "_", tool_name.lower()).strip("_") or "unnamed"
    return ToolAction(action=f"tool.{slug}", resource=f"tool:{slug}")


def resource_arguments(rule: ToolAction) -> list[str]:
    """The arguments a rule's resource template is made of ([] for a callable): those a
    tool must read as the values the resource names (`_schema.check_types`)."""
    if not isinstance(rule.resource, str):
        return []
    return sorted(_Template(rule.resource).argument_names or ())


def check_call(
    rule: ToolAction, validator: Any | None, schema: Any, arguments: dict[str, Any]
) -> None:
    """ArgumentsRefused when a call's arguments do not match its tool's JSON Schema
    (`validator`, from `_schema.schema_validator`), or one its resource is made of is not
    of the type the schema gives it: refused before it is decided, as the MCP proxy
    refuses it, not put to a reviewer and then refused, or read otherwise, by the tool."""
    check_types(resource_arguments(rule), arguments, schema)
    check_arguments(validator, arguments)


def resolve(
    actions: Mapping[str, ToolAction] | None,
    tool_name: str,
    default: Callable[[str], ToolAction] = default_action,
) -> ToolAction:
    return (actions or {}).get(tool_name) or default(tool_name)


@dataclass(frozen=True)
class Refusal:
    """A tool call that did not run, and what the model is told."""

    text: str
    action_id: str | None
    error: BaseException


class ToolFailed(ReportedAsSaid):
    """Raised inside the guard for a tool that answered with an error, so the guard reports
    `failed` with the error's words; the framework's own answer still goes to the model."""


def refusal(exc: BaseException) -> Refusal:
    """The text the model gets instead of the tool's answer."""
    action_id = exc.action_id if isinstance(exc, ActionNotPermitted) else None
    ref = f" (Oversight action {action_id})" if action_id else ""
    if isinstance(exc, ArgumentsRefused):
        text = f"Not run: {exc}"
    elif isinstance(exc, DryRun):
        text = (
            "Dry run: this agent runs with a staging token, so the call was recorded"
            f"{ref} and not run."
        )
    elif isinstance(exc, ActionHalted):
        text = f"Not run: a kill switch has halted this agent{ref}. {_reasons(exc)}"
    elif isinstance(exc, ApprovalTimeout):
        text = (
            f"Not run: the call waited {exc.waited:.0f}s for a person's approval{ref} and "
            "nobody decided; it was withdrawn. Ask again later."
        )
    elif isinstance(exc, ActionExpired):
        text = f"Not run: nobody approved the call before it expired{ref}."
    elif isinstance(exc, ActionRejected):
        who = exc.decided_by or "a reviewer"
        why = exc.comment or "no comment"
        text = f"Not run: {who} rejected the call{ref}: {why}"
    elif isinstance(exc, ActionFinished) and exc.status in ("allowed", "approved"):
        # Started by another caller, or allowed and never reported: it may have run.
        text = f"Not run again: {may_have_run(exc.decision, 'Oversight action')}."
    elif isinstance(exc, ActionFinished):
        text = f"Not run again: this call has run already{ref}; it runs at most once."
    elif isinstance(exc, ActionNotStarted):
        text = f"Not run: Oversight would not start the approved call{ref}: {exc}"
    elif isinstance(exc, ActionEdited):
        text = (
            f"Not run: a reviewer approved other params ({exc.decision.params}) that this "
            f"tool cannot run{ref}; it was withdrawn."
        )
    elif isinstance(exc, ActionNotPermitted):
        text = f"Not run: Oversight {exc.status} the call{ref}. {_reasons(exc)}"
    elif halted_since(exc):
        text = f"Not run: {HALTED_SINCE}."
    elif isinstance(exc, OversightError):
        text = f"Not run: Oversight could not decide the call, so it was not made ({exc})."
    else:
        text = f"Not run: the call could not be put to Oversight ({type(exc).__name__}: {exc})."
    return Refusal(text=text.strip(), action_id=action_id, error=exc)


def _reasons(exc: ActionNotPermitted) -> str:
    reasons = "; ".join(r.text for r in exc.reasons)
    return f"Reason: {reasons}." if reasons else ""


def _refused_at_entry(exc: Exception) -> Refusal:
    if not isinstance(exc, OversightError):
        logger.exception("could not describe a tool call to Oversight; it was not run")
    return refusal(exc)


def run_guarded(
    client: Oversight,
    rule: ToolAction,
    arguments: dict[str, Any],
    run: Callable[[dict[str, Any]], T],
    *,
    timeout: float,
    after: Callable[[T], Any],
    failure: Callable[[T], str | None] = lambda _: None,
    noted: Noted[T] | None = None,
    session_id: str = "",
    idempotency_key: str | None = None,
    give_up: bool = True,
) -> T | Refusal:
    """Ask, wait while held, then `run` the arguments as approved (edits applied) and
    report `after(result)`; or the refusal, with nothing run. `noted(result, note)`: the
    result the model gets, told what an approval said beyond yes (`_noted`).
    `idempotency_key` and `give_up`: as for `run_guarded_async`."""
    spec = rule.spec(
        timeout=timeout,
        session_id=session_id,
        idempotency_key=idempotency_key,
        give_up=give_up,
    )
    guard = Guard(client, spec, dict(arguments))
    try:
        guard.__enter__()
    except Exception as exc:  # fail closed: no decision, no call
        return _refused_at_entry(exc)
    try:
        result = run({**arguments, **guard.edited_arguments})
        guard.after = after(result)
        failed = failure(result)
        if failed:
            raise ToolFailed(failed)
    except ToolFailed as exc:
        guard.__exit__(type(exc), exc, exc.__traceback__)
        return _noted(result, guard, noted)
    except BaseException as exc:
        guard.__exit__(type(exc), exc, exc.__traceback__)
        raise
    guard.__exit__(None, None, None)
    return _noted(result, guard, noted)


async def run_guarded_async(
    client: AsyncOversight,
    rule: ToolAction,
    arguments: dict[str, Any],
    run: Callable[[dict[str, Any]], Awaitable[T]],
    *,
    timeout: float,
    after: Callable[[T], Any],
    failure: Callable[[T], str | None] = lambda _: None,
    noted: Noted[T] | None = None,
    session_id: str = "",
    idempotency_key: str | None = None,
    give_up: bool = True,
    key_is_own: bool = False,
) -> T | Refusal:
    """`run_guarded` for async tools and the async client. With `idempotency_key` and
    `give_up=False`, a hold nobody decided in time stays pending (the refusal's error is
    an `ApprovalTimeout`) and asking again with that key comes back to the same action.
    `key_is_own`: the key is this call's own (GuardSpec)."""
    spec = rule.spec(
        timeout=timeout,
        session_id=session_id,
        idempotency_key=idempotency_key,
        give_up=give_up,
        key_is_own=key_is_own,
    )
    guard = AsyncGuard(client, spec, dict(arguments))
    try:
        await guard.__aenter__()
    except Exception as exc:
        return _refused_at_entry(exc)
    try:
        result = await run({**arguments, **guard.edited_arguments})
        guard.after = after(result)
        failed = failure(result)
        if failed:
            raise ToolFailed(failed)
    except ToolFailed as exc:
        await guard.__aexit__(type(exc), exc, exc.__traceback__)
        return _noted(result, guard, noted)
    except BaseException as exc:
        await guard.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    await guard.__aexit__(None, None, None)
    return _noted(result, guard, noted)


def _noted(result: T, guard: Guard | AsyncGuard, noted: Noted[T] | None) -> T:
    """The tool's answer, with what the approval said beyond yes (the arguments a reviewer
    edited, her comment: `Decision.approval_note`) added by the adapter's `noted`, as the
    MCP proxy adds it to its result. The outcome was reported before, with the tool's own."""
    note = guard.approval_note
    return noted(result, note) if note and noted is not None else result
