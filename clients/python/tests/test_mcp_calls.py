"""oversight-mcp's naming, keys, answers and command line (no server needed)."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest
import sdk_extras

pytest.importorskip("mcp", reason=sdk_extras.reason("mcp"))

import mcp_types as types

from oversight_sdk import _schema
from oversight_sdk.mcp import calls
from oversight_sdk.mcp.cli import parse
from oversight_sdk.models import Decision, Reason, Vote

NAMING = calls.Naming("Payments API", resources={"refund": "stripe:charge/{charge}"})


def test_a_call_is_named_by_its_server_and_tool() -> None:
    assert NAMING.action("Refund-Card") == "mcp.payments_api.refund-card"
    assert calls.Naming("x", action_template="tools.{tool}").action("Get Weather") == (
        "tools.get_weather"
    )


def test_the_resource_comes_from_the_tools_template_over_its_arguments() -> None:
    assert NAMING.resource("refund", {"charge": "ch_1", "amount": 5}) == "stripe:charge/ch_1"
    assert NAMING.resource("balance", {}) == "mcp:payments_api/balance"
    with pytest.raises(ValueError, match="charge"):
        NAMING.resource("refund", {"amount": 5})


def test_a_tools_template_applies_to_the_tool_under_any_name_that_makes_its_action() -> None:
    """An upstream that renamed `refund` to `Refund` (one action, one pinned definition)
    does not get the default resource, which a forbid on the charge would not match."""
    assert NAMING.resource("Refund", {"charge": "ch_1"}) == "stripe:charge/ch_1"
    assert NAMING.resource("re fund", {"charge": "ch_1"}) == "mcp:payments_api/re%20fund"
    with pytest.raises(ValueError, match=r"'refund' and 'Refund' .* make one action word"):
        calls.Naming("x", resources={"refund": "a:{x}", "Refund": "b:{x}"})


FILES = calls.Naming("fs", resources={"read": "fs:/home/agent/{path}", "get": "https://{h}/x"})


@pytest.mark.parametrize(
    ("path", "segment"),
    [
        ("x/../private/key", ".."),
        ("./private/key", "."),
        ("..", ".."),
        ("../x", ".."),
        ("x/..", ".."),
        ("x/./y", "."),
        (".", "."),
        ("x\\..\\private\\key", ".."),
        ("x/..\\private", ".."),
    ],
)
def test_a_dot_or_dot_dot_segment_in_an_argument_is_refused(path: str, segment: str) -> None:
    # fs:/home/agent/x/../private/key is not matched by a forbid on
    # fs:/home/agent/private/* but is granted by fs:/home/agent/* and reaches that file.
    with pytest.raises(ValueError, match=f"argument path has a '{re.escape(segment)}' path"):
        FILES.resource("read", {"path": path})


def test_an_argument_making_an_empty_path_segment_is_refused() -> None:
    for path in ("/private/key", "private//key", "x\\/y"):
        with pytest.raises(ValueError, match="argument path makes an empty path segment"):
            FILES.resource("read", {"path": path})
    assert FILES.resource("get", {"h": "example.com"}) == "https://example.com/x"  # its own


def test_an_empty_argument_is_refused_wherever_it_would_stand() -> None:
    """`fs:/home/agent/` names the directory, not a file in it; `https:///x` no host."""
    with pytest.raises(ValueError, match="argument path is empty"):
        FILES.resource("read", {"path": ""})
    with pytest.raises(ValueError, match="argument h is empty"):
        FILES.resource("get", {"h": ""})


def test_names_with_dots_that_are_not_dot_segments_are_kept() -> None:
    for path in (".hidden", "a..b", "notes/v1.2/x.txt", "..."):
        assert FILES.resource("read", {"path": path}) == f"fs:/home/agent/{path}"


def test_whitespace_control_characters_and_percent_are_percent_encoded() -> None:
    assert FILES.resource("read", {"path": "my notes/2026 plan.txt"}) == (
        "fs:/home/agent/my%20notes/2026%20plan.txt"
    )
    assert FILES.resource("read", {"path": "a\tb\nc\x00\u00a0\u3000"}) == (
        "fs:/home/agent/a%09b%0Ac%00%C2%A0%E3%80%80"
    )
    assert FILES.resource("read", {"path": "100%/Zürich:é"}) == "fs:/home/agent/100%25/Zürich:é"
    assert FILES.resource("Get Weather", {}) == "mcp:fs/Get%20Weather"
    with pytest.raises(ValueError, match="longer than 500"):
        FILES.resource("read", {"path": "x" * 500})


def test_a_value_that_is_not_a_string_is_put_in_as_compact_json() -> None:
    for value, text in (
        (None, "null"),
        (True, "true"),
        (42, "42"),
        (1.5, "1.5"),
        ({"b": [1, "a b"], "a": 1}, '{"a":1,"b":[1,"a%20b"]}'),
    ):
        assert FILES.resource("read", {"path": value}) == f"fs:/home/agent/{text}"


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("card:{card.id}", "uses {card.id}: only top-level arguments can be named"),
        ("x:{items[0]}", "uses {items[0]}: only top-level arguments can be named"),
        ("x:{}", "uses {}: name an argument"),
        ("x:{0}", "uses {0}: name an argument"),
        ("x:{path", "is not valid: expected '}'"),
        ("x:path}", "is not valid: Single '}'"),
        ("x:{path!r}", "conversions and format specs are not supported"),
        ("x:{path:>40}", "conversions and format specs are not supported"),
        ("x: {path}", "contains whitespace"),
    ],
)
def test_a_bad_template_fails_when_the_naming_is_made(template: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        calls.check_template(template)
    with pytest.raises(ValueError, match=re.escape(says)):
        calls.Naming("x", resources={"tool": template})
    calls.check_template("x:{{literal}}/{path}")


def test_templates_for_a_tool_the_upstream_lacks_or_an_argument_it_lacks_are_named() -> None:
    schema = {"type": "object", "properties": {"order": {"type": "string"}, "amount": {}}}
    tools = [
        types.Tool(name="Refund", input_schema=schema),
        types.Tool(name="lookup", input_schema=schema),
        types.Tool(name="free", input_schema={"type": "object"}),  # no properties: not checked
    ]
    naming = calls.Naming(
        server="shop",
        resources={
            "refund": "shop:order/{order}",  # Refund's, under its action word: fine
            "refnud": "shop:order/{order}",
            "lookup": "shop:order/{ordr}",
            "free": "shop:{anything}",
        },
    )
    assert naming.template_problems(tools) == [
        "--resource refnud=shop:order/{order}: the upstream server has no tool refnud "
        "(its tools: Refund, free, lookup)",
        "--resource lookup=shop:order/{ordr}: the tool has no argument ordr (its arguments: "
        "order, amount), so each of its calls is refused",
    ]
    assert (
        calls.Naming(server="shop", resources={"refund": "x/{order}"}).template_problems(tools[:1])
        == []
    )


def test_arguments_that_do_not_match_the_tools_schema_are_refused_saying_where() -> None:
    schema = {
        "type": "object",
        "properties": {"charge": {"type": "string"}, "amount": {"type": "integer"}},
        "required": ["charge", "amount"],
    }
    validator = _schema.schema_validator(schema)
    _schema.check_arguments(validator, {"charge": "ch_1", "amount": 5})
    for arguments, says in (
        ({"charge": "ch_1", "amount": "abc"}, "($.amount: 'abc' is not of type 'integer')"),
        ({"charge": "ch_1"}, "(the arguments: 'amount' is a required property)"),
    ):
        with pytest.raises(ValueError) as refused:
            _schema.check_arguments(validator, arguments)
        assert str(refused.value) == (
            f"the arguments do not match the tool's input schema {says}; call it again with "
            "arguments the schema allows"
        )
    # A schema that is not one leaves the check to the upstream.
    assert _schema.schema_validator({"type": "no such type"}) is None
    assert _schema.schema_validator(None) is None
    _schema.check_arguments(None, {"anything": object()})


def test_the_same_call_has_the_same_key_and_the_next_one_another() -> None:
    one = calls.first_key(action="a", resource="r", arguments={"x": 1, "y": 2})
    assert one == calls.first_key(action="a", resource="r", arguments={"y": 2, "x": 1})
    assert one != calls.first_key(action="a", resource="r", arguments={"x": 2, "y": 2})
    assert calls.next_key(one, "id-1") != calls.next_key(one, "id-2") != one


def _result(text: str, **fields: object) -> calls.types.CallToolResult:
    return calls.types.CallToolResult(
        content=[calls.types.TextContent(type="text", text=text)], **fields
    )


def test_the_after_state_is_the_results_json_when_its_text_is_json() -> None:
    answered = _result('{\n  "refunded": 10,\n  "charge": "ch_1"\n}')
    assert calls.result_summary(answered) == {
        "is_error": False,
        "json": {"refunded": 10, "charge": "ch_1"},
    }
    assert calls.result_summary(_result("[1, 2]"))["json"] == [1, 2]
    structured = _result("{}", structured_content={"refunded": 10})
    assert calls.result_summary(structured) == {"is_error": False, "structured": {"refunded": 10}}
    for text in ("Refunded 10 on ch_1.", "{not json", '"a string"', "12"):
        assert calls.result_summary(_result(text)) == {"is_error": False, "text": text}
    failed = calls.result_summary(_result("card declined", is_error=True))
    assert failed == {"is_error": True, "text": "card declined"}
    long = '{"x": "' + "y" * calls.MAX_SUMMARY_TEXT + '"}'  # kept as text, cut
    assert calls.result_summary(_result(long))["text"] == long[: calls.MAX_SUMMARY_TEXT]


def test_a_big_structured_result_is_reported_cut() -> None:
    big = {"rows": ["r" * 100] * 3000}  # about 300 KB: Oversight refused the report (413)
    summary = calls.result_summary(_result("{}", structured_content=big, is_error=True))
    text = json.dumps(big, separators=(",", ":"))
    assert summary == {"is_error": True, "structured_truncated": text[: calls.MAX_SUMMARY_TEXT]}
    small = {"ok": "é" * (calls.MAX_SUMMARY_TEXT - 10)}  # its JSON fits: kept whole
    assert calls.result_summary(_result("", structured_content=small))["structured"] == small
    assert len(json.dumps(calls.result_summary(_result("[" + "1," * 5000 + "1]")))) < 2100


def test_the_after_state_lists_the_other_blocks_by_type_never_their_data() -> None:
    t = calls.types
    blocks = [
        t.TextContent(type="text", text="done"),
        t.ImageContent(type="image", data="aGk=", mime_type="image/png"),
        t.AudioContent(type="audio", data="aGk=", mime_type="audio/wav"),
        t.EmbeddedResource(
            type="resource",
            resource=t.TextResourceContents(uri="file:///x", text="secret", mime_type="text/plain"),
        ),
        t.ResourceLink(type="resource_link", name="y", uri="file:///y"),
    ]
    summary = calls.result_summary(t.CallToolResult(content=blocks))
    assert summary == {
        "is_error": False,
        "text": "done",
        "other_content": [
            {"type": "image", "mimeType": "image/png"},
            {"type": "audio", "mimeType": "audio/wav"},
            {"type": "resource", "uri": "file:///x", "mimeType": "text/plain"},
            {"type": "resource_link", "uri": "file:///y"},
        ],
    }
    alone = t.EmbeddedResource(
        type="resource", resource=t.BlobResourceContents(uri="file:///b", blob="aGk=")
    )
    assert calls.result_summary(t.CallToolResult(content=[alone])) == {
        "is_error": False,
        "text": "",
        "other_content": [{"type": "resource", "uri": "file:///b"}],
    }
    many = [blocks[1]] * (calls.MAX_OTHER_CONTENT + 3)
    summary = calls.result_summary(t.CallToolResult(content=many, structured_content={"n": 1}))
    assert summary["structured"] == {"n": 1}
    assert len(summary["other_content"]) == calls.MAX_OTHER_CONTENT
    assert summary["other_content_omitted"] == 3


def test_a_held_call_says_what_holds_it_and_who_can_let_it_run() -> None:
    rule = Reason("rule", "big refunds", "hold", "amount over 100")
    held = calls.awaiting(Decision(id="a3", status="pending", reasons=[rule]), "https://o/a3/")
    text = held.content[0].text
    assert held.is_error  # it did not run: never to be read as the tool's result
    assert text.startswith("This call awaits approval in Oversight and has not run (held by ")
    assert "big refunds: amount over 100" in text and "A person can decide it at" in text
    pin = Reason("tool_pin", "changed tool definition", "hold", "an owner must accept it")
    changed = calls.awaiting(Decision(id="a4", status="pending", reasons=[pin]), "https://o/a4/")
    text = changed.content[0].text
    assert "an owner of the agent must accept the new definition" in text
    assert "A person can decide it" not in text and "once approved" not in text
    assert "Also held by" not in text and text.count("since it was pinned") == 1
    both = Decision(id="a5", status="pending", reasons=[pin, rule])
    assert "Also held by: big refunds: amount over 100." in (
        calls.awaiting(both, "https://o/a5/").content[0].text
    )
    assert changed.structured_content == {
        "status": "pending",
        "action_id": "a4",
        "approval_url": "https://o/a4/",
    }


def test_a_refusal_carries_the_reason_or_the_reviewers_comment() -> None:
    denied = Decision(
        id="a1",
        status="denied",
        reasons=[
            Reason("grant", "g", "allow", "granted"),
            Reason("rule", "blocked charge", "forbid", "matched"),
        ],
    )
    result = calls.refusal(denied)
    assert result.is_error
    assert result.content[0].text == "Oversight denied this call: blocked charge: matched"
    assert result.meta == {calls.ACTION_META: "a1"}
    rejected = Decision(
        id="a2", status="rejected", votes=[Vote("rita", "Rita", "deny", "not today")]
    )
    assert "Rita declined it: not today" in calls.refusal(rejected).content[0].text


def test_the_command_line() -> None:
    options = parse(["--resource", "refund=stripe:charge/{charge}", "--", "python", "s.py"])
    assert options.command == ["python", "s.py"]
    assert options.resources == {"refund": "stripe:charge/{charge}"}
    assert options.hold_wait == 50
    assert options.loop == ("uvloop" if importlib.util.find_spec("uvloop") else "asyncio")
    assert parse(["--loop", "asyncio", "--", "x"]).loop == "asyncio"
    assert options.upstream_protocol == "auto"
    assert parse(["--upstream-protocol", "legacy", "--", "x"]).upstream_protocol == "legacy"
    assert options.passes == frozenset()  # tools only
    both = parse(["--pass", "resources", "--pass", "prompts", "--", "x"])
    assert both.passes == {"resources", "prompts"}
    http = parse(["--upstream", "http://h/mcp", "--listen", "127.0.0.1:9000"])
    assert http.listen == ("127.0.0.1", 9000)
    assert options.session_id == ""  # its own, made when it starts
    assert parse(["--session-id", "conv-7", "--", "x"]).session_id == "conv-7"
    for bad in (
        ["--session-id", "conv-7", "--upstream", "http://h/mcp", "--listen", "127.0.0.1:9000"],
        ["--session-id", "x" * 101, "--", "x"],
        [],
        ["--upstream", "http://h/mcp"],
        ["--resource", "refund", "--", "x"],
        ["--upstream", "http://h/mcp", "--listen", "h:9", "--", "x"],
        ["--loop", "trio", "--", "x"],
        ["--upstream-protocol", "2024-11-05", "--", "x"],
        ["--pass", "tools", "--", "x"],
    ):
        with pytest.raises(SystemExit):
            parse(bad)


def test_on_protocol_2026_a_held_call_answers_with_the_link_as_input_required() -> None:
    from oversight_sdk.mcp.link import INPUT_KEY, InputRequiredLink

    message = calls.approval_prompt("mcp.payments.refund", "stripe:charge/ch_1")
    assert "mcp.payments.refund on stripe:charge/ch_1" in message
    url = "https://o.test/actions/a1/"
    answer = InputRequiredLink().answer_now(url=url, action_id="a1", message=message)
    wire = answer.model_dump(by_alias=True, exclude_none=True)
    assert wire["resultType"] == "input_required"
    request = wire["inputRequests"][INPUT_KEY]
    assert request["method"] == "elicitation/create"
    assert request["params"] == {
        "mode": "url",
        "message": message,
        "url": url,
    }


def test_an_argument_the_resource_names_must_have_its_schemas_type() -> None:
    schema = {
        "properties": {
            "id": {"type": "integer"},
            "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "loose": {"description": "any"},
        }
    }
    _schema.check_types(["id", "maybe", "loose"], {"id": 7, "maybe": None, "loose": 7.5}, schema)
    for arguments in ({"id": 7.0}, {"id": "07"}, {"id": True}, {"maybe": "7"}):
        with pytest.raises(ValueError, match="not of the type the tool's schema gives it"):
            _schema.check_types(list(arguments), arguments, schema)
    _schema.check_types(["id"], {"id": "x"}, {"type": "object"})  # no type said: not checked
