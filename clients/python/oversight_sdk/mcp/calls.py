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
from urllib.parse import quote

import mcp_types as types

from ..models import Decision, compact_json

DEFAULT_ACTION_TEMPLATE = "mcp.{server}.{tool}"
# The result's `_meta` key naming the Oversight action a call became.
ACTION_META = "oversight.dev/action_id"
_PROTOCOL_META = "io.modelcontextprotocol/"  # stamps the upstream's SDK set; ours sets its own
MAX_SUMMARY_TEXT = 2000  # characters of a result's text kept as the after-state
MAX_OTHER_CONTENT = 20  # non-text blocks of a result listed in the after-state
MAX_CONTENT_URI = 200  # characters of such a block's uri kept
MAX_RESOURCE_LENGTH = 500  # the longest resource Oversight takes

_NOT_ACTION_CHARS = re.compile(r"[^a-z0-9_-]+")
# Percent-encoded in a resource: whitespace (Oversight refuses a resource with any, as
# str.isspace says, which is what `\s` matches), control characters, and `%` itself so
# that an encoded value cannot be mistaken for another.
_ENCODED = re.compile(r"[%\s\x00-\x1f\x7f-\x9f]")
_NOT_IN_TEMPLATE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_SEPARATORS = re.compile(r"[/\\]")
_DOUBLED_SEPARATOR = re.compile(r"[/\\]{2}")


def action_word(name: str) -> str:
    """A tool or server name as one word of an action name (`Get Weather` -> `get_weather`)."""
    return _NOT_ACTION_CHARS.sub("_", name.lower()).strip("_") or "unnamed"


def check_template(template: str) -> None:
    """Raise ValueError, with a sentence saying what is wrong, unless `template` is a
    resource template: text with `{name}` fields, each naming a top-level argument (no
    positions, nested fields, conversions or format specs), and no whitespace. Checked when
    the proxy starts, not on each call."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"the resource template {template!r} is not valid: {exc} "
            "(a literal { or } is written {{ or }})"
        ) from None
    for literal, name, spec, conversion in parts:
        if _NOT_IN_TEMPLATE.search(literal):
            raise ValueError(
                f"the resource template {template!r} contains whitespace or a control "
                "character; Oversight refuses such resources"
            )
        if name is None:
            continue
        field_text = "{" + name + (f"!{conversion}" if conversion else "")
        field_text += (f":{spec}" if spec else "") + "}"
        if name == "" or name.isdigit():
            raise ValueError(
                f"the resource template {template!r} uses {field_text}: name an argument, "
                "as in {path}"
            )
        if "." in name or "[" in name:
            raise ValueError(
                f"the resource template {template!r} uses {field_text}: only top-level "
                "arguments can be named, nested fields are not supported"
            )
        if spec or conversion:
            raise ValueError(
                f"the resource template {template!r} uses {field_text}: conversions and "
                "format specs are not supported, only {name}"
            )


def check_resource_tools(resources: dict[str, str]) -> None:
    """Raise ValueError unless each tool given a resource template makes an action word of
    its own (`refund` and `Refund` would both be the tool `refund` or `Refund`)."""
    seen: dict[str, str] = {}
    for name in resources:
        word = action_word(name)
        if word in seen:
            raise ValueError(
                f"the tools {seen[word]!r} and {name!r} are given resource templates but make "
                f"one action word ({word}); give one of them"
            )
        seen[word] = name


def resource_text(value: Any) -> str:
    """An argument's value as it is put into a resource: a string as it is, anything else
    as compact JSON (`null`, `true`, `{"a":1}`), not Python's `None`/`True`; whitespace,
    control characters and `%` percent-encoded, since Oversight refuses a resource with
    whitespace (`my notes/a b.txt` -> `my%20notes/a%20b.txt`)."""
    if not isinstance(value, str):
        value = compact_json(value)
    return _ENCODED.sub(lambda match: quote(match.group(), safe=""), value)


def _check_segments(name: str, text: str) -> None:
    """Refuse an empty value, and one with a `.` or `..` path segment (`../x`, `x/./y`,
    `..\\x`): resources are matched as they are written, never normalised, so
    `fs:/home/agent/x/../private/key` would escape a forbid on `fs:/home/agent/private/*`
    yet reach that file; and `crm:contact/{id}` with an empty id names no contact, where a
    tool may act on the collection (`DELETE /contacts/`), past a forbid on any one."""
    if not text:
        raise ValueError(
            f"the argument {name} is empty, which leaves an empty segment in the resource; "
            "it names nothing, so it is refused"
        )
    for dots in ("..", "."):
        if dots in _SEPARATORS.split(text):
            raise ValueError(
                f"the argument {name} has a {dots!r} path segment; resources are not "
                "normalised, so it is refused"
            )


@dataclass(frozen=True)
class Naming:
    """How calls are named: the server's name, the action template over `{server}` and
    `{tool}`, and resource templates over each tool's arguments (`{charge}`)."""

    server: str
    action_template: str = DEFAULT_ACTION_TEMPLATE
    # tool name -> template; it applies to the tool whose name makes the same action word
    # (`refund` to `Refund` too), since that tool is the same action with the same pinned
    # definition: an upstream that renamed it must not get the default resource.
    resources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for template in self.resources.values():  # a bad template fails at start-up
            check_template(template)
        check_resource_tools(self.resources)

    def _template(self, tool: str) -> str | None:
        word = action_word(tool)
        return next((t for name, t in self.resources.items() if action_word(name) == word), None)

    def action(self, tool: str) -> str:
        return self.action_template.format(server=action_word(self.server), tool=action_word(tool))

    def fields(self, tool: str) -> list[str]:
        """The arguments `tool`'s resource template names (none for the default resource)."""
        template = self._template(tool)
        if template is None:
            return []
        return [name for _, name, _, _ in string.Formatter().parse(template) if name]

    def template_problems(self, tools: list[types.Tool]) -> list[str]:
        """What is wrong with the resource templates for the upstream's `tools`, in words:
        a template for a tool the upstream does not have (its calls, if it ever has one,
        get it; until then nothing does), or naming an argument the tool's input schema does
        not have (every call of it would be refused for want of it)."""
        problems = []
        words = {action_word(tool.name) for tool in tools}
        for name, template in self.resources.items():
            if action_word(name) not in words:
                have = ", ".join(sorted(tool.name for tool in tools)) or "none"
                problems.append(
                    f"--resource {name}={template}: the upstream server has no tool {name} "
                    f"(its tools: {have})"
                )
        for tool in tools:
            properties = (tool.input_schema or {}).get("properties")
            if not isinstance(properties, dict):
                continue
            unknown = [name for name in self.fields(tool.name) if name not in properties]
            if unknown:
                problems.append(
                    f"--resource {tool.name}={self._template(tool.name)}: the tool has no "
                    f"argument {', '.join(unknown)} (its arguments: "
                    f"{', '.join(properties) or 'none'}), so each of its calls is refused"
                )
        return problems

    def resource(self, tool: str, arguments: dict[str, Any]) -> str:
        """The resource of a call: the tool's template filled from its arguments (each as
        `resource_text` makes it), or `mcp:<server>/<tool>`. Raises ValueError naming a
        missing argument or one that could reach a resource its text does not name (a
        `.`/`..` segment, an empty segment)."""
        template = self._template(tool)
        if template is None:
            return _bounded(f"mcp:{action_word(self.server)}/{resource_text(tool)}")
        parts = list(string.Formatter().parse(template))
        names = [name for _, name, _, _ in parts if name]
        missing = [name for name in names if name not in arguments]
        if missing:
            raise ValueError(
                f"the resource template {template!r} needs the argument(s) {', '.join(missing)}"
            )
        pieces: list[tuple[str, str | None]] = []  # (text, the argument it is, if one)
        for literal, name, _, _ in parts:
            pieces.append((literal, None))
            if name:
                text = resource_text(arguments[name])
                _check_segments(name, text)
                pieces.append((text, name))
        _check_joins(pieces)
        return _bounded("".join(text for text, _ in pieces))


def _check_joins(pieces: list[tuple[str, str | None]]) -> None:
    """Refuse a resource where an argument makes an empty path segment (`//`): with
    `fs:/home/agent/{path}`, `path="/private/key"` gives `fs:/home/agent//private/key`, which
    a forbid on `fs:/home/agent/private/*` does not match but a file system reads as that
    file. Doubled separators within the template's own text (`https://`) are its own."""
    resource = "".join(text for text, _ in pieces)
    owner = [i for i, (text, _) in enumerate(pieces) for _ in text]  # piece of each char
    for match in _DOUBLED_SEPARATOR.finditer(resource):
        first, second = owner[match.start()], owner[match.start() + 1]
        names = [name for _, name in pieces[first : second + 1] if name is not None]
        if names:
            raise ValueError(
                f"the argument {names[0]} makes an empty path segment ({match.group()}) in "
                f"the resource {resource!r}; resources are not normalised, so it is refused"
            )


def _bounded(resource: str) -> str:
    """`resource`, unless it is longer than Oversight takes (it would refuse every call)."""
    if len(resource) > MAX_RESOURCE_LENGTH:
        raise ValueError(
            f"the resource {resource[:60]!r}... is longer than {MAX_RESOURCE_LENGTH} "
            "characters, the most Oversight takes"
        )
    return resource


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
    one (its JSON text, cut, when that is longer than MAX_SUMMARY_TEXT); else its text, as
    JSON when the whole text is a JSON object or array (many tools answer so), otherwise as
    text (truncated); the other blocks it has, by type; and whether the tool said it failed.
    Bounded so that the outcome report is never too big for Oversight to take."""
    summary: dict[str, Any] = {"is_error": bool(result.is_error)}
    if result.structured_content is not None:
        summary.update(_structured_summary(result.structured_content))
    else:
        text = result_text(result)
        as_json = _json_text(text) if len(text) <= MAX_SUMMARY_TEXT else None
        if as_json is not None:
            summary["json"] = as_json
        else:
            summary["text"] = text[:MAX_SUMMARY_TEXT]
    others = [_block_summary(b) for b in result.content if not isinstance(b, types.TextContent)]
    if others:
        summary["other_content"] = others[:MAX_OTHER_CONTENT]
    if len(others) > MAX_OTHER_CONTENT:
        summary["other_content_omitted"] = len(others) - MAX_OTHER_CONTENT
    return summary


def _structured_summary(structured: dict[str, Any]) -> dict[str, Any]:
    """Structured content as it is when its compact JSON is short enough, else the first
    MAX_SUMMARY_TEXT characters of that JSON text, under a key that says it was cut."""
    text = json.dumps(structured, separators=(",", ":"), ensure_ascii=False, default=str)
    if len(text) <= MAX_SUMMARY_TEXT:
        return {"structured": structured}
    return {"structured_truncated": text[:MAX_SUMMARY_TEXT]}


def _block_summary(block: types.ContentBlock) -> dict[str, str]:
    """A non-text block as its type and mime type or uri: what the tool gave besides text
    (an image, audio, a resource or a link to one), never its data."""
    described: dict[str, str] = {"type": block.type}
    if isinstance(block, types.EmbeddedResource):
        uri, mime_type = block.resource.uri, block.resource.mime_type
    elif isinstance(block, types.ResourceLink):
        uri, mime_type = block.uri, block.mime_type
    else:
        uri, mime_type = None, getattr(block, "mime_type", None)
    if mime_type:
        described["mimeType"] = str(mime_type)[:MAX_CONTENT_URI]
    if uri:
        described["uri"] = str(uri)[:MAX_CONTENT_URI]
    return described


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
    elif status == "cancelled" and decision.error:  # why, as Oversight recorded it
        why = decision.error
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


def with_approval_note(result: types.CallToolResult, decision: Decision) -> types.CallToolResult:
    """The result of an approved call, with what the approval said beyond yes as a last
    text block (`Decision.approval_note`)."""
    if decision.approval_note:
        note = types.TextContent(type="text", text=decision.approval_note)
        result.content = [*result.content, note]
    return result


def outcome_unknown(action_id: str, why: str) -> types.CallToolResult:
    """The answer for a call the upstream gave no answer to: it may have run."""
    text = (
        f"The tool's outcome is unknown: the upstream server gave no answer ({why}). It may "
        "have run, so it is not run again: the same call again is told so, and the agent's "
        f"people are asked in Oversight to settle what happened (action {action_id})."
    )
    return text_result(text, is_error=True, status="unknown", action_id=action_id)


def approved_before_change(decision: Decision) -> types.CallToolResult:
    """The answer for a call approved before its tool's definition changed: not run (its
    approval withdrawn), since the change awaits an owner."""
    text = (
        "Not run: this call was approved before the tool's definition changed, and an owner "
        "of the agent must accept the new definition first (on the agent's page in "
        "Oversight, MCP tools), so the approval was withdrawn. Once the new definition is "
        "accepted, call the tool again with the same arguments to have it decided."
    )
    return text_result(text, is_error=True, status="cancelled", action_id=decision.id)


def _reasons_text(decision: Decision) -> str:
    """The reasons that said no (each `name: detail`), not the grants that said yes."""
    against = [r for r in decision.reasons if r.effect not in ("allow", "permit")]
    return "; ".join(r.text for r in against)


def _holds_text(decision: Decision, *, but: str = "") -> str:
    """What holds the call (each `name: detail`): a hold rule, a changed tool definition
    (for its owner to accept), an open alert; not those of kind `but`."""
    holds = [r for r in decision.reasons if r.effect == "hold" and r.kind != but]
    return "; ".join(r.text for r in holds)


def approval_prompt(action: str, resource: str) -> str:
    """What the person at the client is told with the approval page's link."""
    return (
        f"Oversight holds this tool call ({action} on {resource}) for a person's approval. "
        "Open the page to see it and decide; the call goes on once it is decided."
    )


def awaiting(decision: Decision, approval_url: str) -> types.CallToolResult:
    """The answer for a call still held when the wait ran out: not run; call again with
    the same arguments once a person has decided. A tool error, as every answer for a
    call that did not run is: a model that reads only the flag must not take it for the
    tool's result."""
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
        text, is_error=True, status="pending", action_id=decision.id, approval_url=approval_url
    )
