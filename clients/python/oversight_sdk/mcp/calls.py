"""What an MCP tool call becomes in Oversight, and what the caller is shown back.

Pure functions: the action name and resource of a call, the idempotency keys that make a
retry resolve to the same action, the after-state reported for a result, and the
`CallToolResult`s the proxy answers with when it does not forward.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types

from ..models import Decision

DEFAULT_ACTION_TEMPLATE = "mcp.{server}.{tool}"
# The result's `_meta` key naming the Oversight action a call became.
ACTION_META = "oversight.dev/action_id"
_PROTOCOL_META = "io.modelcontextprotocol/"  # stamps the upstream's SDK set; ours sets its own
MAX_SUMMARY_TEXT = 2000  # characters of a result's text kept as the after-state

_NOT_ACTION_CHARS = re.compile(r"[^a-z0-9_-]+")


def action_word(name: str) -> str:
    """A tool or server name as one word of an action name (`Get Weather` -> `get_weather`)."""
    return _NOT_ACTION_CHARS.sub("_", name.lower()).strip("_") or "unnamed"


@dataclass(frozen=True)
class Naming:
    """How calls are named: the server's name, the action template over `{server}` and
    `{tool}`, and resource templates over each tool's arguments (`{charge}`)."""

    server: str
    action_template: str = DEFAULT_ACTION_TEMPLATE
    resources: dict[str, str] = field(default_factory=dict)  # tool name -> template

    def action(self, tool: str) -> str:
        return self.action_template.format(server=action_word(self.server), tool=action_word(tool))

    def resource(self, tool: str, arguments: dict[str, Any]) -> str:
        """The resource of a call: the tool's template filled from its arguments, or
        `mcp:<server>/<tool>`. Raises ValueError naming a missing argument."""
        template = self.resources.get(tool)
        if template is None:
            return f"mcp:{action_word(self.server)}/{tool}"
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
        missing = [name for name in names if name not in arguments]
        if missing:
            raise ValueError(
                f"the resource template {template!r} needs the argument(s) {', '.join(missing)}"
            )
        return template.format_map({name: arguments[name] for name in names})


def first_key(*, action: str, resource: str, arguments: dict[str, Any]) -> str:
    """The idempotency key of a call: the same tool, resource and arguments give the same
    key, so a retry of a held call finds the action it became."""
    canonical = json.dumps([action, resource, arguments], sort_keys=True, default=str)
    return "mcp-" + hashlib.sha256(canonical.encode()).hexdigest()[:48]


def next_key(key: str, finished_action_id: str) -> str:
    """The key of the next identical call once the action behind `key` has finished: a
    chain, so a proxy that restarted finds the current one by walking it."""
    digest = hashlib.sha256(f"{key}|{finished_action_id}".encode()).hexdigest()[:48]
    return f"mcp-{digest}"


def result_summary(result: types.CallToolResult) -> dict[str, Any]:
    """The after-state reported for a forwarded call: its structured content when it has
    one; else its text, as JSON when the whole text is a JSON object or array (many tools
    answer so), otherwise as text (truncated); and whether the tool said it failed."""
    summary: dict[str, Any] = {"is_error": bool(result.is_error)}
    if result.structured_content is not None:
        summary["structured"] = result.structured_content
        return summary
    text = result_text(result)
    as_json = _json_text(text) if len(text) <= MAX_SUMMARY_TEXT else None
    if as_json is not None:
        summary["json"] = as_json
    else:
        summary["text"] = text[:MAX_SUMMARY_TEXT]
    return summary


def _json_text(text: str) -> dict[str, Any] | list[Any] | None:
    """``text`` as the JSON object or array it is, else None."""
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def result_text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def text_result(text: str, *, is_error: bool, **structured: Any) -> types.CallToolResult:
    result = types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        is_error=is_error,
        structured_content=structured or None,
    )
    return with_action(result, structured.get("action_id"))


def with_action(result: types.CallToolResult, action_id: str | None) -> types.CallToolResult:
    """The result as the caller gets it: the upstream's protocol stamps left out, and the
    Oversight action it became named in `_meta`."""
    meta = {k: v for k, v in (result.meta or {}).items() if not k.startswith(_PROTOCOL_META)}
    if action_id:
        meta[ACTION_META] = action_id
    result.meta = meta or None
    return result


def refusal(decision: Decision) -> types.CallToolResult:
    """A tool error for a call Oversight did not let run, with the reason."""
    status = decision.status
    if status in ("rejected", "cancelled", "expired") and decision.decided_by:
        why = f"{decision.decided_by} declined it"
        why += f": {decision.comment}" if decision.comment else ""
    else:
        why = _reasons_text(decision) or status
    lead = {
        "denied": "Oversight denied this call",
        "halted": "Oversight halted this call (a kill switch is engaged)",
        "dry_run": "Not run, a dry run (staging token): Oversight recorded this call",
        "rejected": "A reviewer rejected this call",
        "expired": "Nobody approved this call in time",
        "cancelled": "This call was cancelled",
    }.get(status, f"Oversight did not allow this call ({status})")
    return text_result(f"{lead}: {why}", is_error=True, status=status, action_id=decision.id)


def _reasons_text(decision: Decision) -> str:
    """The reasons that said no (each `name: detail`), not the grants that said yes."""
    against = [r for r in decision.reasons if r.effect not in ("allow", "permit")]
    return "; ".join(f"{r.name}: {r.detail}" if r.detail else r.name for r in against)


def _holds_text(decision: Decision, *, but: str = "") -> str:
    """What holds the call (each `name: detail`): a hold rule, a changed tool definition
    (for its owner to accept), an open alert; not those of kind `but`."""
    holds = [r for r in decision.reasons if r.effect == "hold" and r.kind != but]
    return "; ".join(f"{r.name}: {r.detail}" if r.detail else r.name for r in holds)


def approval_prompt(action: str, resource: str) -> str:
    """What the person at the client is told with the approval page's link."""
    return (
        f"Oversight holds this tool call ({action} on {resource}) for a person's approval. "
        "Open the page to see it and decide; the call goes on once it is decided."
    )


def awaiting(decision: Decision, approval_url: str) -> types.CallToolResult:
    """The answer for a call still held when the wait ran out: not run; call again with
    the same arguments once a person has decided."""
    holds = _holds_text(decision)
    if any(r.kind == "tool_pin" and r.effect == "hold" for r in decision.reasons):
        others = _holds_text(decision, but="tool_pin")
        text = (  # not for a reviewer to approve: for the agent's owner to accept
            "This call is held in Oversight and has not run: the tool's definition changed "
            "since it was pinned, and an owner of the agent must accept the new definition "
            f"(on the agent's page in Oversight, MCP tools; this call: {approval_url} ). "
            "Once it is accepted, call the tool again with the same arguments to have it "
            "decided." + (f" Also held by: {others}." if others else "")
        )
    else:
        text = (
            "This call awaits approval in Oversight and has not run"
            + (f" (held by {holds})" if holds else "")
            + f". A person can decide it at {approval_url} ; call the tool again with the "
            "same arguments to run it once approved."
        )
    return text_result(
        text, is_error=False, status="pending", action_id=decision.id, approval_url=approval_url
    )
