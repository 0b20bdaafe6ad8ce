"""What each adapter gives the model after an approval that said more than yes (edited
arguments, a comment): the tool's answer in the framework's own shape, with the note
(`Decision.approval_note`) added where the model reads it. The conformance suite checks
the same end to end, through each framework, against a live server."""

from __future__ import annotations

import importlib.util

import pytest
import sdk_extras

NOTE = "Oversight: Rita Reviewer approved this call with edited arguments (amount: 150 -> 120)."


def _needs(module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(sdk_extras.reason(extra))


def test_langchain_adds_the_note_to_the_tool_message() -> None:
    _needs("langchain", "langchain")
    from langchain_core.messages import ToolMessage
    from langgraph.types import Command

    from oversight_sdk.adapters.langchain import _with_note

    text = ToolMessage(content='{"refunded": 120}', tool_call_id="c1", name="refund")
    assert _with_note(text, NOTE).content == '{"refunded": 120}\n\n' + NOTE
    blocks = ToolMessage(content=[{"type": "text", "text": "done"}], tool_call_id="c1")
    assert _with_note(blocks, NOTE).content == [
        {"type": "text", "text": "done"},
        {"type": "text", "text": NOTE},
    ]
    assert blocks.content == [{"type": "text", "text": "done"}]  # a copy: the tool's own kept
    command = Command(update={"refunds": 1})
    assert _with_note(command, NOTE) is command  # it updates state; no answer to add to


def test_openai_agents_adds_the_note_to_the_tool_output() -> None:
    _needs("agents", "openai-agents")
    from agents import ToolOutputImage, ToolOutputText, function_tool

    from oversight_sdk.adapters.openai_agents import _with_note

    @function_tool
    def refund(charge: str, amount: int) -> str:
        """Refund."""
        return "refunded"

    assert _with_note(refund, "refunded 120", NOTE) == "refunded 120\n\n" + NOTE
    assert _with_note(refund, {"refunded": 120}, NOTE) == "{'refunded': 120}\n\n" + NOTE
    image = ToolOutputImage(image_url="https://example.test/receipt.png")
    assert _with_note(refund, [image], NOTE) == [image, ToolOutputText(text=NOTE)]
    assert _with_note(refund, image, NOTE) == [image, ToolOutputText(text=NOTE)]
    refund.output_json_schema = {"type": "object"}  # its output must stay that JSON
    assert _with_note(refund, '{"refunded": 120}', NOTE) == '{"refunded": 120}'


def test_pydantic_ai_sends_the_note_with_the_return_value() -> None:
    _needs("pydantic_ai", "pydantic-ai")
    from pydantic_ai.messages import ToolReturn

    from oversight_sdk.adapters.pydantic_ai import _with_note

    assert _with_note({"refunded": 120}, NOTE) == ToolReturn({"refunded": 120}, content=NOTE)
    own = ToolReturn({"refunded": 120}, content="The receipt is attached.")
    assert _with_note(own, NOTE).content == ["The receipt is attached.", NOTE]
    assert _with_note(ToolReturn("done"), NOTE).content == NOTE
