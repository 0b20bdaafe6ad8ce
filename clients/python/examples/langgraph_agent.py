"""A LangChain agent whose tool calls Oversight decides, run offline with LangChain's fake
chat model: `OVERSIGHT_URL=... OVERSIGHT_TOKEN=... python langgraph_agent.py ch_1 10`.

Needs `pip install './clients/python[langchain]'` and an agent allowed `payments.refund` on
`stripe:charge/*` (docs/integrations/langgraph.md).
"""

import sys

from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from oversight_sdk import Oversight
from oversight_sdk.adapters import ToolAction
from oversight_sdk.adapters.langchain import OversightMiddleware


@tool
def refund(charge: str, amount: int) -> dict:
    """Refund `amount` of a charge."""
    print(f"refund ran: {charge} {amount}")
    return {"refunded": amount, "charge": charge}


class FakeModel(GenericFakeChatModel):
    """Stands in for a real chat model: no network, no key."""

    def bind_tools(self, tools, **kwargs):
        return self


def main(charge: str = "ch_1", amount: str = "10") -> None:
    call = {"name": "refund", "args": {"charge": charge, "amount": int(amount)}, "id": "call_1"}
    model = FakeModel(messages=iter([AIMessage("", tool_calls=[call]), AIMessage("done")]))
    with Oversight() as client:  # OVERSIGHT_URL, OVERSIGHT_TOKEN
        oversight = OversightMiddleware(
            client,
            actions={"refund": ToolAction("payments.refund", resource="stripe:charge/{charge}")},
            timeout=120,  # seconds a held call waits for a person
        )
        agent = create_agent(model, tools=[refund], middleware=[oversight])
        state = agent.invoke({"messages": [HumanMessage("Refund the customer")]})
    for message in state["messages"]:
        if isinstance(message, ToolMessage):
            print(f"the model was told ({message.status}): {message.content}")


if __name__ == "__main__":
    main(*sys.argv[1:])
