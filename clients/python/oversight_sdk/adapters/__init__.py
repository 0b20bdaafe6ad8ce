"""Oversight in front of an agent framework's tool calls, one module per framework.

Each is behind its own extra and imports its framework only when imported itself:

    pip install './clients/python[langchain]'     # oversight_sdk.adapters.langchain
    pip install './clients/python[openai-agents]' # oversight_sdk.adapters.openai_agents
    pip install './clients/python[pydantic-ai]'   # oversight_sdk.adapters.pydantic_ai
    pip install './clients/python[claude-agent]'  # oversight_sdk.adapters.claude_agent

They behave alike (docs/integrations/): allowed, the tool runs and its result is reported
as the after-state; denied, halted, rejected, a dry run or no answer from Oversight, the
tool does not run and the model gets the reason as the tool's answer; held, the call
waits for a person (bounded by `timeout`) and runs the params she approved.
"""

from ._tools import DEFAULT_TIMEOUT, Refusal, ToolAction, default_action, refusal

__all__ = ["DEFAULT_TIMEOUT", "Refusal", "ToolAction", "default_action", "refusal"]
