"""A fake Model for the OpenAI Agents SDK, as the SDK's own tests use: offline, no key.
Import it only after `pytest.importorskip("agents", ...)` (tests/sdk_extras.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall


class OneCallModel(Model):
    """One call to `refund` with `arguments`, then a final answer; keeps what the tool
    answered in `told`."""

    def __init__(self, arguments: dict[str, Any]) -> None:
        self.arguments, self.told = arguments, []
        self.call_id = f"call_{uuid.uuid4().hex}"

    async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kw: Any):
        told = [i["output"] for i in input if isinstance(i, dict) and "output" in i]
        if told:
            self.told.extend(told)
            return ModelResponse(output=[], usage=Usage(), response_id=None)
        call = ResponseFunctionToolCall(
            type="function_call",
            call_id=self.call_id,
            name="refund",
            arguments=json.dumps(self.arguments),
        )
        return ModelResponse(output=[call], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError
