"""The proxy: an MCP server in front of another, asking Oversight before each tool call.

`tools/list` shows the upstream's tools the agent has a grant for, after showing Oversight
every definition (pinned by hash the first time; a changed one holds every call to the
tool until an owner accepts it). `tools/call` is a decision through the SDK's
`AsyncOversight`:

    allowed            forwarded; the outcome reported with a summary of the result (just
                       after the caller has it: the report is off the call's path, and
                       starts once the answer has had time to reach the wire, unless
                       `max_reports` are already under way: then the call waits for one
                       of them to end, so a slow Oversight slows the calls instead of
                       piling up reports)
    denied, halted...  not forwarded; a tool error with the reason (also a retry of a
                       call allowed before a kill switch engaged since, which may have
                       run then: Oversight answers it 409 `halted_since`)
    held               waits up to `hold_wait` seconds; forwarded on approval (with the
                       reviewer's edited arguments), else a result saying it awaits
                       approval, with the approval page's URL. A client that supports
                       URL elicitation is shown that page's link at once (`ApprovalLink`,
                       link.py): while the call waits, or, on protocol 2026-07-28, as the
                       call's first answer (the call again then waits)

A retry with the same arguments resolves to the same action (the idempotency key is
derived from the action, resource and arguments; calls.py) and runs at most once.
Whenever Oversight cannot be reached, or answers anything unexpected, nothing is
forwarded.

When the upstream says its tools changed (`tools_changed`, upstream.py), the proxy lists
them again at once and shows Oversight the new definitions, so a definition changed in
the middle of a session holds its calls from then on, as one changed between sessions
does; then it tells its own clients. Until that listing has reached Oversight, every call
lists the tools again before it is decided.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import mcp_types as types
from mcp.shared.exceptions import MCPError

from .. import _schema
from .._http import HALTED_SINCE, halted_since, may_have_run
from ..aio import AsyncOversight
from ..errors import ActionNotPermitted, ActionNotStarted, InvalidRequest, OversightError
from ..models import Decision, Status, ToolDefinition
from . import calls
from .upstream import NotRun, SessionLost

logger = logging.getLogger(__name__)

# Steps along a call's key chain before giving up (each one an action that finished).
_MAX_CHAIN = 10_000
_MAX_PAGES = 1_000  # of the upstream's tool listing
# The upstream's error answers that say it did not run the call (refused it as asked); any
# other failure of a call leaves its outcome unknown (_forward).
_REFUSED_UNRUN = frozenset(
    {
        types.PARSE_ERROR,
        types.INVALID_REQUEST,
        types.METHOD_NOT_FOUND,
        types.INVALID_PARAMS,
        types.HEADER_MISMATCH,
        types.MISSING_REQUIRED_CLIENT_CAPABILITY,
        types.UNSUPPORTED_PROTOCOL_VERSION,
        types.URL_ELICITATION_REQUIRED,
    }
)
_KEPT_KEYS = 10_000  # distinct calls whose next key the proxy remembers
# Seconds between a call's answer and the start of its outcome report. The answer still
# crosses several turns of the event loop on its way out (the MCP server's tasks and
# streams); a report started at once would spend its share of this one thread in between
# (docs/performance.md, 2026-12-04: about 0.5 ms of the call's p50).
_ANSWER_FIRST = 0.002
_FINISHED = frozenset(
    {
        Status.SUCCEEDED,
        Status.FAILED,
        Status.ROLLED_BACK,
        Status.DENIED,
        Status.HALTED,
        Status.DRY_RUN,
        Status.REJECTED,
        Status.EXPIRED,
        Status.CANCELLED,
    }
)


# How a held call ended that is shown to its caller once, and acknowledged to Oversight:
# a person's no, or nobody's yes in time. (A cancelled call is asked again.)
_TO_SHOW = frozenset({Status.REJECTED, Status.EXPIRED})


@dataclass
class _Turn:
    """Identical calls take turns: one lock per call in progress, dropped after."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Upstream(Protocol):
    """What the proxy needs of the MCP server behind it: an `UpstreamSession` (upstream.py),
    or an `mcp.Client`."""

    async def list_tools(
        self, *, cursor: str | None = None, cache_mode: Any = "use"
    ) -> types.ListToolsResult: ...

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult: ...


class ApprovalLink(Protocol):
    """Shows the person at the MCP client a held call's approval page (URL elicitation,
    link.py): either as the call's answer at once (`answer_now`), or while the call waits
    (`show`, then `decided`). None of them raises: the link is a courtesy, the call's
    outcome never depends on it."""

    def answer_now(
        self, *, url: str, action_id: str, message: str
    ) -> types.InputRequiredResult | None: ...

    async def show(self, *, url: str, action_id: str, message: str) -> None: ...

    async def decided(self, action_id: str) -> None: ...


@dataclass(frozen=True)
class Settings:
    naming: calls.Naming
    hold_wait: float = 50.0  # seconds a held call waits before answering "awaits approval"
    oversight_url: str = ""  # for the approval page's link
    max_reports: int = 32  # outcome reports under way at once, off the calls' path


class Proxy:
    """The tool handlers of the proxy's MCP server; one per upstream connection."""

    def __init__(self, upstream: Upstream, oversight: AsyncOversight, settings: Settings):
        self.upstream = upstream
        self.oversight = oversight
        self.settings = settings
        self._tools: dict[str, types.Tool] = {}  # as last listed and shown to Oversight
        self._offered: frozenset[str] = frozenset()  # of those, the ones the client is shown
        # Of those, the ones whose changed definition awaits an owner (calls held).
        self._awaiting_owner: frozenset[str] = frozenset()
        # Tools left out of that listing, each with why: its name and another's make one
        # action (see `_distinct`).
        self._ambiguous: dict[str, str] = {}
        self._warned: set[str] = set()  # resource template mistakes, each logged once
        self._validators: dict[str, Any] = {}  # by tool, as last listed
        self._listing = asyncio.Lock()
        # The upstream's changes of its tools counted (`tools_changed`), and how many of
        # them the last listing shown to Oversight had seen: the tools are current when
        # the two are equal.
        self._changes = 0
        self._changes_listed = 0
        self._changed = asyncio.Event()
        # Per identical call: one at a time (two at once must not both run one action),
        # and the key its next ask uses (so a busy proxy does not walk the chain).
        self._call_locks: dict[str, _Turn] = {}
        self._keys: OrderedDict[str, str] = OrderedDict()  # the most recent _KEPT_KEYS
        self._reports: set[asyncio.Task[None]] = set()
        self.calls_under_way = 0
        self._report_slots = asyncio.Semaphore(settings.max_reports)

    # -- tools/list ----------------------------------------------------------------------

    async def list_tools(self) -> list[types.Tool]:
        """The upstream's tools this agent may use, each definition shown to Oversight.
        A tool whose changed definition awaits an owner is left out: its calls are held
        anyway, and its new description (a rug pull's words to the model, which may ask
        for things done with the agent's other tools) must not reach the client before an
        owner has read it. Raises OversightError when Oversight cannot answer (no list
        rather than a guess)."""
        async with self._listing:
            changes = self._changes
            listed = await self._upstream_tools()
            self._warn_templates(listed)
            tools, self._ambiguous = _distinct(listed, self.settings.naming)
            definitions = [self._definition(tool) for tool in tools]
            statuses = await self.oversight.tools(definitions) if definitions else []
            self._tools = {tool.name: tool for tool in tools}
            self._validators = {}
            self._changes_listed = changes
            self._offered = frozenset(
                status.name for status in statuses if status.granted and not status.changed
            )
            self._awaiting_owner = frozenset(status.name for status in statuses if status.changed)
            return [tool for tool in tools if tool.name in self._offered]

    def _validator(self, name: str) -> Any | None:
        """`name`'s arguments' validator, made once per listing (_schema.schema_validator)."""
        if name not in self._validators:
            self._validators[name] = _schema.schema_validator(self._tools[name].input_schema)
        return self._validators[name]

    def _warn_templates(self, tools: list[types.Tool]) -> None:
        """Each mistake in the resource templates (a tool's name mistyped, an argument the
        tool does not have) logged once: the calls say it too, but only when made."""
        for problem in self.settings.naming.template_problems(tools):
            if problem not in self._warned:
                self._warned.add(problem)
                logger.warning("%s", problem)

    async def _upstream_tools(self) -> list[types.Tool]:
        """The upstream's tools as they are now: never a listing the client cached (a
        server may ask for that with a time to live), since Oversight must see the
        definitions the upstream currently gives. A listing that found the upstream's
        session lost is made again, whole, in the new one (it changes nothing)."""
        try:
            return await self._upstream_listing()
        except SessionLost:
            return await self._upstream_listing()

    async def _upstream_listing(self) -> list[types.Tool]:
        """Every page of the upstream's listing. One that never ends (a cursor given
        twice, or more than _MAX_PAGES pages) is refused (NotRun), not followed forever:
        nothing is listed or called until it ends."""
        tools: list[types.Tool] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            page = await self.upstream.list_tools(cursor=cursor, cache_mode="refresh")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools
            if cursor in seen:
                raise NotRun(f"the upstream's tool listing repeats its cursor {cursor[:100]!r}")
            seen.add(cursor)
        raise NotRun(f"the upstream's tool listing goes on past {_MAX_PAGES} pages")

    def input_schema(self, name: str) -> dict[str, Any] | None:
        """`name`'s input schema as last listed and shown to the client (None: not shown,
        so there are no headers to check; a changed definition's schema is not the
        client's). The proxy's MCP server checks a call's `Mcp-Param-*` headers against
        it; without it the server would list the tools, upstream and in Oversight, for
        every call."""
        tool = self._tools.get(name) if name in self._offered else None
        return tool.input_schema if tool is not None else None

    def _definition(self, tool: types.Tool) -> ToolDefinition:
        return ToolDefinition(
            server=self.settings.naming.server,
            name=tool.name,
            action=self.settings.naming.action(tool.name),
            description=tool.description or "",
            input_schema=tool.input_schema,
        )

    def tools_changed(self) -> None:
        """The upstream said its tools changed: every call lists them again before it is
        decided, until `follow_changes` has shown Oversight the new ones."""
        self._changes += 1
        self._changed.set()

    async def follow_changes(self, announce: Callable[[], Awaitable[None]]) -> None:
        """Runs as long as the proxy: after each change (several at once count as one),
        list the tools and show Oversight their definitions, then `announce` the change
        to the proxy's own clients. If Oversight cannot be reached, the next call lists
        them again (and is not run unless that works)."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self.list_tools()
            except Exception as exc:  # the upstream or Oversight: the next call lists again
                logger.warning("could not list the upstream's changed tools: %s", exc)
            await announce()

    # -- tools/call ----------------------------------------------------------------------

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        link: ApprovalLink | None = None,
        session_id: str = "",
    ) -> types.CallToolResult | types.InputRequiredResult:
        """Decide the call and answer it; `link` shows a held call's approval page to the
        person at the client, where the client can show one; `session_id` is the client's
        session as Oversight records it (cli.call_session; "" for a call on its own)."""
        self.calls_under_way += 1  # a proxy stopped gives them time to finish (stopping.py)
        try:
            return await self._call_tool(name, arguments, link, session_id)
        finally:
            self.calls_under_way -= 1

    async def _call_tool(
        self, name: str, arguments: dict[str, Any], link: ApprovalLink | None, session_id: str
    ) -> types.CallToolResult | types.InputRequiredResult:
        naming = self.settings.naming
        try:
            # Never called on a definition Oversight has not seen.
            if name not in self._tools or self._changes_listed != self._changes:
                await self.list_tools()
            if name in self._ambiguous:
                return calls.text_result(f"Not run: {self._ambiguous[name]}", is_error=True)
            if name not in self._tools:
                return calls.text_result(f"Unknown tool: {name}", is_error=True)
            action = naming.action(name)
            resource = naming.resource(name, arguments)
            made_of = naming.fields(name)  # what a reviewer may not edit (Oversight keeps them)
            _schema.check_types(made_of, arguments, self._tools[name].input_schema)
            _schema.check_arguments(self._validator(name), arguments)
        except (ValueError, NotRun) as exc:
            return calls.text_result(f"Not run: {exc}", is_error=True)
        except OversightError as exc:
            return _unreachable(exc)
        call_key = calls.first_key(action=action, resource=resource, arguments=arguments)
        # A held call waits at most hold_wait in all, its turn behind an identical call
        # included (else the second of two would wait twice that, past its client's patience).
        due = asyncio.get_running_loop().time() + self.settings.hold_wait
        turn = self._call_locks.setdefault(call_key, _Turn())
        turn.users += 1
        try:
            async with turn.lock:
                return await self._decide_and_run(
                    name, action, resource, arguments, made_of, call_key, link, due, session_id
                )
        finally:
            turn.users -= 1
            if not turn.users:
                del self._call_locks[call_key]

    async def _decide_and_run(
        self,
        name: str,
        action: str,
        resource: str,
        arguments: dict[str, Any],
        made_of: list[str],
        call_key: str,
        link: ApprovalLink | None,
        due: float,
        session_id: str,
    ) -> types.CallToolResult | types.InputRequiredResult:
        try:
            key, decision = await self._current(
                action, resource, arguments, made_of, call_key, session_id
            )
            if decision.pending:
                wait = max(0.0, due - asyncio.get_running_loop().time())
                held = await self._held(decision, action, resource, link, wait)
                if isinstance(held, types.InputRequiredResult):
                    return held  # the call again, once the link is shown, finds this action
                decision = held
        except OversightError as exc:
            return _unreachable(exc)
        if decision.pending:  # the key stays: a retry finds this action
            return self._own(name, calls.awaiting(decision, self._approval_url(decision.id)))
        answer, settled = await self._answer(name, action, resource, arguments, decision)
        if settled:  # the next identical call is a new action
            self._keys[call_key] = calls.next_key(key, decision.id)
            self._keys.move_to_end(call_key)
            if len(self._keys) > _KEPT_KEYS:  # a forgotten one only costs a walk along its chain
                self._keys.popitem(last=False)
        return answer

    async def _answer(
        self, name: str, action: str, resource: str, arguments: dict[str, Any], decision: Decision
    ) -> tuple[types.CallToolResult, bool]:
        """A decided call's answer, and whether its action is settled: run (and reported,
        or its report tried), refused, or seen to have run. One that may have run without
        a report, or that could not be claimed, is not: the key stays, so the next
        identical call (through this proxy too) comes back to it rather than run anew;
        so does a call its client cancelled while the upstream ran it (this raises)."""
        if decision.status == Status.APPROVED and name in self._awaiting_owner:
            # Approved before the tool's definition changed: run now, it would run under
            # a definition no owner has accepted. The approval is withdrawn; the next
            # identical call is a new action, held for the change.
            try:
                await self.oversight.cancel(decision.id)
            except OversightError as exc:
                return _unreachable(exc), False
            return self._own(name, calls.approved_before_change(decision)), True
        if decision.status == Status.APPROVED:
            edit = self._edit_problem(name, resource, decision)
            if edit:
                # Nothing runs that nobody decided: the approved edit is withdrawn before
                # its run is claimed, as the SDK's guard does (a claimed one would be
                # reported failed, and count in failure rates, though nothing ran).
                try:
                    await self.oversight.cancel(decision.id)
                except OversightError as exc:
                    return _unreachable(exc), False
                answer = calls.text_result(
                    f"Not run: {edit}.", is_error=True, status="cancelled", action_id=decision.id
                )
                return self._own(name, answer), True
            try:  # another proxy may wait on the same approval: one of them runs it
                claimed = await self.oversight.claim(decision)
            except ActionNotStarted as exc:  # approved, yet Oversight will not start it
                text = f"Not run: Oversight would not start the approved call: {exc}"
                answer = calls.text_result(text, is_error=True, action_id=exc.action_id)
                return self._own(name, answer), False  # a later call comes back to it
            except ActionNotPermitted as exc:
                decision = exc.decision  # started by another caller, or no longer runnable
            except OversightError as exc:
                return _unreachable(exc), False
            else:
                run_with = claimed.params if claimed.params is not None else arguments
                edit = self._edit_problem(name, resource, claimed)
                if edit:  # the approved params unknown before (a replayed answer): reported
                    await self._report(claimed, "failed", action, resource, run_with, error=edit)
                    answer = calls.text_result(
                        f"Not run: {edit}.", is_error=True, action_id=claimed.id
                    )
                    return answer, True
                answer, settled = await self._forward(name, action, resource, run_with, claimed)
                return calls.with_approval_note(answer, claimed), settled
        if decision.status == Status.ALLOWED and not decision.replayed:
            return await self._forward(name, action, resource, arguments, decision)
        if decision.status in (Status.ALLOWED, Status.APPROVED):
            unknown = calls.text_result(
                f"Not run again: {may_have_run(decision)}.", is_error=True, action_id=decision.id
            )
            return unknown, False
        if decision.status in (Status.SUCCEEDED, Status.FAILED):  # another proxy ran it
            ran = calls.text_result(
                f"Not run again: this call already ran (action {decision.id}, {decision.status}).",
                is_error=decision.status == Status.FAILED,
                action_id=decision.id,
            )
            return self._own(name, ran), True
        if decision.status in _TO_SHOW:
            await self._acknowledge(decision)
        return calls.refusal(decision), True

    def _edit_problem(self, name: str, resource: str, decision: Decision) -> str:
        """Why the arguments a reviewer approved (edited) may not run, or "". Oversight
        decides edited params on the action's own resource, so an edit of an argument
        the resource template names (`charge`) would run the tool on a resource nobody
        decided on, a forbidden one perhaps, while the record names the first."""
        if decision.params is None:
            return ""
        run_with = decision.params
        try:
            edited = self.settings.naming.resource(name, run_with)
        except ValueError as exc:
            return f"the arguments approved with edits are refused: {exc}"
        if edited != resource:
            return (
                f"the arguments approved with edits make the resource {edited}, not {resource}, "
                "which Oversight decided; call again with the arguments you mean, to have "
                "them decided"
            )
        return ""

    def _own(self, name: str, result: types.CallToolResult) -> types.CallToolResult:
        """An answer the proxy makes itself, the tool not run now: for a tool that declares
        an output schema, a tool error, since its clients check every other result against
        that schema (and this one has none of the tool's output)."""
        tool = self._tools.get(name)
        if tool is not None and tool.output_schema is not None:
            result.is_error = True
        return result

    async def _acknowledge(self, decision: Decision) -> None:
        """Tell Oversight the caller is being shown how its held call ended, so that the
        next identical call, through this proxy or another, is a new action. If that
        fails, the next identical call is shown the refusal again."""
        try:
            await self.oversight.acknowledge(decision.id)
        except OversightError as exc:
            logger.warning("could not acknowledge action %s: %s", decision.id, exc)

    async def _held(
        self,
        decision: Decision,
        action: str,
        resource: str,
        link: ApprovalLink | None,
        wait: float,
    ) -> Decision | types.InputRequiredResult:
        """A held call: answered at once with `link`'s input request, where the client
        takes the link that way; otherwise its decision, waited for up to `wait` seconds
        (what is left of `hold_wait`) while `link` shows the approval page (withdrawn when
        the wait ends, and told once the call is decided)."""
        if link is None or self.settings.hold_wait <= 0:
            return await self.oversight.wait(decision.id, timeout=wait)
        page = {
            "url": self._approval_url(decision.id),
            "action_id": decision.id,
            "message": calls.approval_prompt(action, resource),
        }
        now = link.answer_now(**page)
        if now is not None:
            return now
        showing = asyncio.get_running_loop().create_task(link.show(**page))
        try:
            decided = await self.oversight.wait(decision.id, timeout=wait)
        finally:
            showing.cancel()  # the client stops asking, if it still does
        if not decided.pending:
            await link.decided(decision.id)
        return decided

    async def _current(
        self,
        action: str,
        resource: str,
        arguments: dict[str, Any],
        made_of: list[str],
        call_key: str,
        session_id: str,
    ) -> tuple[str, Decision]:
        """The action this call resolves to, with its key: a held or approved one asked
        before with the same arguments, a held one rejected or expired whose refusal no
        caller has been shown (the call that was told "awaits approval" is shown it when
        it calls again), or a new one. Walks the key chain past actions that finished
        (each a call that ran or was answered; a cancelled one, such as a call held for a
        tool change since accepted, is asked again). The chain is found from any session:
        Oversight does not bind a key to the session that asks."""
        key = self._keys.get(call_key, call_key)
        for _ in range(_MAX_CHAIN):
            decision = await self.oversight.ask(
                action,
                resource,
                params=arguments,
                session_id=session_id,
                idempotency_key=key,
                reports_outcome=True,
                resource_params=made_of,
            )
            if not decision.replayed:
                return key, decision
            if decision.status in (Status.ALLOWED, Status.PENDING):
                current = await self.oversight.get(decision.id)  # what has happened since
                if current.status not in _FINISHED or (
                    current.status in _TO_SHOW and current.acknowledged_at is None
                ):
                    # Its answer lost on the way to this proxy: nobody ran it, so this
                    # call is its first answer. Otherwise it may have run elsewhere.
                    return key, current if decision.lost_answer else _replayed(current)
            key = calls.next_key(key, decision.id)
        raise RuntimeError("too many earlier identical calls to find this one")

    async def _forward(
        self,
        name: str,
        action: str,
        resource: str,
        arguments: dict[str, Any],
        decision: Decision,
    ) -> tuple[types.CallToolResult, bool]:
        """The upstream's answer to a decided call, and whether its action is settled
        (run and reported, or refused): not when the upstream gave no answer."""
        try:
            result = await self.upstream.call_tool(name, arguments)
        except NotRun as exc:  # reported as failed, with why
            await self._report(decision, "failed", action, resource, arguments, error=str(exc))
            return calls.text_result(f"Not run: {exc}", is_error=True, action_id=decision.id), True
        except Exception as exc:
            if isinstance(exc, MCPError) and exc.error.code in _REFUSED_UNRUN:
                # The upstream answered that it would not run it: reported, and said.
                logger.warning("upstream call %s refused: %s", name, exc)
                await self._report(decision, "failed", action, resource, arguments, error=str(exc))
                failed = f"The tool failed: {exc}"
                return calls.text_result(failed, is_error=True, action_id=decision.id), True
            # No answer (a time-out, a lost connection, an upstream that failed while
            # running it): it may have run. No outcome is guessed: the action stays
            # unreported, so its people are alerted to settle it, and the same call again
            # comes back to it (the key stays) rather than running anew.
            logger.error("upstream call %s (action %s) ended unknown: %s", name, decision.id, exc)
            return calls.outcome_unknown(decision.id, str(exc)), False
        outcome = "failed" if result.is_error else "succeeded"
        error = calls.result_text(result)[: calls.MAX_SUMMARY_TEXT] if result.is_error else ""
        # The caller has its result at once; the outcome follows it to Oversight (drain()
        # waits for the reports still under way before the proxy exits). At most
        # max_reports at once: past that, this call waits for a slot.
        await self._report_slots.acquire()
        report = functools.partial(
            self._report,
            decision,
            outcome,
            action,
            resource,
            arguments,
            after=calls.result_summary(result),
            error=error,
        )
        task = asyncio.get_running_loop().create_task(_after_the_answer(report))
        self._reports.add(task)
        task.add_done_callback(self._report_done)
        return calls.with_action(result, decision.id), True

    def _report_done(self, task: asyncio.Task[None]) -> None:
        self._reports.discard(task)
        self._report_slots.release()

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for the outcome reports still under way (at most `timeout` seconds)."""
        pending = set(self._reports)
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout)
            for task in late:
                logger.error("an outcome report did not finish before the proxy stopped")
                task.cancel()

    async def _report(
        self,
        decision: Decision,
        outcome: str,
        action: str,
        resource: str,
        params: dict[str, Any],
        *,
        after: Any = None,
        error: str = "",
    ) -> None:
        try:
            await self.oversight.report(
                decision.id,
                outcome,
                after=after,
                error=error or ("" if outcome == "succeeded" else "failed"),
                action=action,
                resource=resource,
                params=params,
            )
        except OversightError as exc:  # it ran; the record lacks its outcome
            logger.error("could not report the outcome of action %s: %s", decision.id, exc)

    def _approval_url(self, action_id: str) -> str:
        return f"{self.settings.oversight_url.rstrip('/')}/actions/{action_id}/"


async def _after_the_answer(report: Callable[[], Awaitable[None]]) -> None:
    """An outcome report, started once the call's answer has had time to leave."""
    await asyncio.sleep(_ANSWER_FIRST)
    await report()


def _replayed(decision: Decision) -> Decision:
    """A decision read again for a retried call (it may have been decided already)."""
    return replace(decision, replayed=True)


def _unreachable(exc: OversightError) -> types.CallToolResult:
    if halted_since(exc):  # not a failure to decide: a kill switch's answer
        return calls.text_result(f"Not run: {HALTED_SINCE}.", is_error=True, status="halted")
    if isinstance(exc, InvalidRequest):  # the call, as the proxy put it, was refused
        return calls.text_result(
            f"Not run: Oversight refused this call as asked ({exc}).", is_error=True
        )
    return calls.text_result(
        f"Not run: Oversight could not decide this call ({exc}).", is_error=True
    )


def _distinct(
    tools: list[types.Tool], naming: calls.Naming
) -> tuple[list[types.Tool], dict[str, str]]:
    """The tools whose action is theirs alone, and why each other one is left out. Two
    tools whose names make one action (`do.thing` and `do_thing` both `mcp.x.do_thing`)
    would share its grants and its pinned definition, so that one's accepted definition
    would let the other run unseen: neither is offered or run."""
    by_action: dict[str, list[str]] = {}
    for tool in tools:
        by_action.setdefault(naming.action(tool.name), []).append(tool.name)
    ambiguous: dict[str, str] = {}
    for action, names in by_action.items():
        if len(names) > 1:
            why = (
                f"the upstream's tools {', '.join(map(repr, names))} all become the action "
                f"{action}, so none of them is offered (they would share its grants and "
                "its pinned definition); rename them upstream"
            )
            logger.warning("%s", why)
            ambiguous.update(dict.fromkeys(names, why))
    return [tool for tool in tools if tool.name not in ambiguous], ambiguous
